"""The ping page: call the API and show its answer."""
