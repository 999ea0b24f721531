"""Navbar, layout and small shared widgets."""
