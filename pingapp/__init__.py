"""pingapp: log in, then call a protected API, with Reflex."""
