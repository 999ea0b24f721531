"""The app's pages; importing this package registers them."""
