"""What the tests (and bench/) share: ports, processes, servers, fake issuers, the browser.

    net         free_port, wait_until (poll until ready), answers (an HTTP check)
    processes   Server (a process group with a log), stop_process_group, granian_command
    app         the app started as a user does (`make run`, `make prod`), its sessions on disk
    deploy      `make backend` servers, the static site behind nginx from deploy/nginx.conf
    redis       redis-server on a free port
    idp         the embedded provider under granian (tests/idp/serve.py's apps)
    clock       a wall and monotonic clock a test moves by hand
    issuers     a local issuer (discovery + JWKS) and tokens signed for it
    api         the API under test: a verifier and app for a local issuer, served over HTTP
    faults      fault set-ups: the provider alone (stoppable, slow), a TCP gate that hangs
    browser     Chromium's command line and what a person does in the pages (Playwright)
    op          the independent provider (npm oidc-provider) with the app signing in at it

Only `browser` and `op` import Playwright and none imports pytest, so bench/ can use the rest
after `make install`. Fixtures live in the conftest files.
"""
