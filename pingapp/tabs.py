"""Open tabs that show a session: signing them out live when it ends elsewhere."""

from __future__ import annotations

import logging

import reflex as rx

from pingapp.auth.state import AuthState
from pingapp.context import TabNotifier

logger = logging.getLogger(__name__)


def tab_notifier(app: rx.App) -> TabNotifier:
    """Sign-out for `app`'s tabs: given Reflex client tokens, show each the
    signed-out page now (its session ended in another tab, from the sessions list,
    or by the provider's back-channel logout), except `except_token`'s own."""

    async def sign_out_tabs(tabs: list[str], except_token: str) -> None:
        for client_token in tabs:
            if client_token == except_token:
                continue
            try:
                token = rx.BaseStateToken(ident=client_token, cls=AuthState)
                async with app.modify_state(token) as root:
                    (await root.get_state(AuthState))._signed_out()
            except Exception:  # one tab must not stop the others, nor the logout
                logger.warning("could not show the signed-out page in a tab", exc_info=True)

    return sign_out_tabs
