"""What the tests (and bench/) share: ports, processes, servers, fake issuers, the browser.

    net         free_port, wait_until (poll until ready), answers (an HTTP check)
    processes   Server (a process group with a log), stop_process_group, granian_command
    app         the app started as a user does (`make run`, `make prod`), its sessions on disk
    deploy      `make backend` servers, the static site behind nginx from deploy/nginx.conf
    redis       redis-server on a free port
    idp         the embedded provider under granian (tests/idp/serve.py's apps)
    idp_flow    calls at that provider several tests make: authorize, PAR, refresh,
                revoke; what the back-channel logout receiver got
    idp_dpop    DPoP at that provider: codes, proofs, token and userinfo calls
    clock       a wall and monotonic clock a test moves by hand
    issuers     a local issuer (discovery + JWKS) and tokens signed for it
    api         the API under test: a verifier and app for a local issuer, served over HTTP;
                `WWW-Authenticate` challenges read by scheme
    dpop_api    that API with DPoP: a policy on the test's clock, a client, proof headers
    fuzz        the API's property tests' Hypothesis settings, strategies and sync client
    faults      fault set-ups: the provider alone (stoppable, slow), a TCP gate that hangs
    browser     Chromium's command line and what a person does in the pages (Playwright)
    op          the independent provider (npm oidc-provider) with the app signing in at it

Only `browser` and `op` import Playwright, only `fuzz` Hypothesis, and none imports pytest,
so bench/ can use the rest after `make install`. Fixtures live in the conftest files; no
test imports another test module or a conftest: what they share is here.
"""
