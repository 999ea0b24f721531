"""The outbound side: the process's shared httpx2 client and its token-attaching auth
(`http`), and where a token may be sent (`allowlist`)."""
