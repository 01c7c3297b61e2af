"""The core's built-in plugins, one module each: the composition roots of the core services.

Each module here declares one service's settings, starts and stops it, and mounts its routes
from :mod:`carme.api`; the services themselves (:mod:`carme.events`, :mod:`carme.auth`,
:mod:`carme.contents`, :mod:`carme.kernels`, :mod:`carme.sessions`) know nothing of hooks or
HTTP routes. They are registered first, in the order of :data:`carme.plugins.BUILTIN_MODULES`,
with the same hooks an extension uses, so an extension replaces a piece the same way it adds one.
"""
