"""carme as a JupyterHub single-user server: ``carme singleuser``, hub OAuth, scopes, activity."""
