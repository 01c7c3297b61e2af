"""The ``dashboards`` extension's hook implementations: entry point ``carme_dashboards.plugin``.

No hooks yet: the execution and rendering services come first, the routes and pages next.
"""
