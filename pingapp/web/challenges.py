"""Reading `WWW-Authenticate` (RFC 9110 section 11.6.1): the one reader of it.

A response may carry several challenges, in one header or several; each names its
scheme, then its parameters as `name=value` or `name="quoted value"`. Quoted strings
are consumed whole, so text inside them never counts as a parameter, and names are
case-insensitive. The token-attaching client reads `invalid_token` and
`use_dpop_nonce` with it, the pings `insufficient_user_authentication`.
"""

from __future__ import annotations

import re

import httpx2

#: One item of a WWW-Authenticate header: a scheme, or `name=value` / `name="quoted"`.
_CHALLENGE_ITEM = re.compile(r"""([\w!#$%&'*+.^`|~-]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?""")


def challenge_params(response: httpx2.Response, scheme: str) -> dict[str, str]:
    """The parameters of the response's `scheme` challenge (any case), names in lower
    case and values unquoted; the first of a repeated name wins; {} when there is none."""
    scheme = scheme.lower()
    found: dict[str, str] = {}
    for header in response.headers.get_list("WWW-Authenticate"):
        current = ""
        for match in _CHALLENGE_ITEM.finditer(header):
            name, value = match.group(1), match.group(2)
            if value is None:
                current = name.lower()
            elif current == scheme and name.lower() not in found:
                found[name.lower()] = re.sub(r"\\(.)", r"\1", value.strip('"'))
    return found


def challenge_error(response: httpx2.Response, scheme: str) -> str:
    """The `error` of the response's `scheme` challenge, '' when it names none."""
    return challenge_params(response, scheme).get("error", "")
