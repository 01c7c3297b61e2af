"""carme: an embeddable Jupyter server and server-extension framework.

``carme.create_app(...)`` returns a Starlette app; see its docstring and the README.
"""

__version__ = "0.1.0"

from .app import create_app  # noqa: E402
from .hooks import hookimpl  # noqa: E402
from .running import run, uvicorn_options  # noqa: E402

__all__ = ["__version__", "create_app", "hookimpl", "run", "uvicorn_options"]
