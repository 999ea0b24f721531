"""The pages that are not the ping's: `home` (/), `profile` (/profile, sign-in
required) and `callback` (/callback, where the provider sends the browser back).

Each module holds one page function; pingapp/pingapp.py registers them with their
routes (pingapp/routes.py) and on_load handlers. The ping page lives with its state
in pingapp/ping/.
"""
