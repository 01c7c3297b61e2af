"""The extension contract: every hook carme calls, in one file.

carme uses pluggy (project name ``carme``). An extension is a module or object with functions
decorated by :data:`hookimpl`; it is found through the ``carme.extensions`` entry-point group, or
passed to :func:`carme.create_app` as ``plugins=[...]``. The core services (contents, kernels,
sessions, auth, events) are plugins too, registered first, so an extension replaces one the same
way it adds anything.

Grammar of names (after Datasette): every hook is ``carme_`` followed by one of

- ``register_<things>``: returns a list of things to add; called once, synchronously, while
  carme is assembled (``carme_register_routes``, ``carme_register_cli_commands``);
- ``startup`` / ``shutdown``: the lifecycle, from the ASGI lifespan;
- ``<thing>`` or ``<thing>_from_<input>``: returns the one thing that wins (``firstresult``: the
  first answer that is not None; the built-ins answer last): ``carme_contents_manager``,
  ``carme_user_from_connection``; ``carme_permission`` is named for its answer too, but every
  plugin is asked and any False wins (a veto);
- ``on_<subject>_<happened>``: a notification after the fact, returning nothing; an exception
  is logged and the other plugins are still told (``carme_on_kernel_started``);
- ``before_<action>``: called before an action, may change its arguments in place, returns
  nothing (``carme_before_save``);
- ``extra_<thing>``: additions merged into something carme builds per request.

An extension can declare hookspecs of its own for other extensions
(:func:`carme_register_hookspecs`); their names follow the same grammar with the extension's
name after ``carme_``: ``carme_watch_on_files_changed``, ``carme_lab_extra_page_config``.
Implementing another extension's hook needs nothing special: while that extension is not
installed or not enabled the hook is never called. (Implementing a core hook or an enabled
extension's hook that does not exist, a typo, marks the extension broken.)

Hooks marked *may be awaitable* can be ``async def`` or return an awaitable; the caller awaits
what needs awaiting (:func:`carme.plugins.await_maybe`). Hooks called per kernel message do not
exist on purpose: a kernel exposes a subscription for its messages instead.
Every call goes through pluggy, one plugin at a time where the caller needs to know who answered
(``CARME_TRACE_HOOKS=1`` logs each); hook wrappers (``wrapper=True``, ``hookwrapper=True``) are
refused at registration, since a wrapper would only ever wrap one plugin's call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from starlette.middleware import Middleware
    from starlette.requests import HTTPConnection
    from starlette.routing import BaseRoute

    from .auth import AuthResult, User
    from .cli import Command
    from .config import Setting
    from .contents.manager import ContentsManager
    from .events import EventSchema
    from .kernels.kernel import Kernel
    from .kernels.provisioner import Provisioner
    from .kernels.specs import KernelSpec, KernelSpecManager
    from .server import Server

PROJECT = "carme"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# --------------------------------------------------------------------------------------------
# Loading: called once, synchronously, while create_app assembles the app.
# --------------------------------------------------------------------------------------------


@hookspec(historic=True)
def carme_register_hookspecs() -> list[object]:
    """Return modules or classes holding this extension's own hookspecs (functions decorated
    with :data:`hookspec`), for other extensions to implement.

    Called once for every plugin as it is registered (historic, so the order of registration does
    not matter: an implementation registered before its hookspec is checked against it then).
    Name the hooks ``carme_<extension>_...`` (see the grammar above).
    """


@hookspec
def carme_register_settings() -> list[Setting]:
    """Declare this plugin's settings.

    Called once while the configuration is read, before anything else runs. Return a list of
    :class:`carme.config.Setting`. An extension's settings live in its own section, named after
    the extension (``watch.polling``); the core's built-in plugins declare the top-level ones.
    Values come from defaults < config files < ``CARME_*`` environment < CLI / create_app.
    """


@hookspec
def carme_register_event_schemas() -> list[EventSchema]:
    """Declare the event schemas this plugin emits on the event bus.

    Called once at app creation. Return a list of :class:`carme.events.EventSchema`; emitting
    an event whose schema was not registered is an error.
    """


@hookspec
def carme_register_routes(server: Server) -> list[BaseRoute]:
    """Return the Starlette routes (``Route``, ``WebSocketRoute``, ``Mount``) this plugin serves.

    Called once at app creation; ``server`` is not started yet, so handlers must look services
    up on it when a request arrives. Paths are relative to the app (the base URL and any mount
    prefix are added outside). Two plugins returning the same path is a start-up error naming
    both. Every route is behind authentication unless listed by
    :func:`carme_register_public_paths`, and declares what it needs by decorating its endpoint
    (a function, or the ASGI app of a websocket route or a ``Mount``) with
    :func:`carme.api.permissions.authorized`: ``@authorized("read", "contents", path="path")``,
    one decorator per permission; :func:`carme.api.permissions.authenticated` for a route any
    identified user may use. The permissions are checked (:func:`carme_permission`) before the
    endpoint runs. A route that declares nothing is logged at start-up, and the tests fail for
    one shipped in this repository.
    """


@hookspec
def carme_register_public_paths(server: Server) -> list[str]:
    """Return path prefixes (relative to the app) that need no authentication.

    Called once at app creation. A path ending in ``/`` covers everything below it; any other is
    exact. The core's own are ``/api`` (the version), ``/login`` and ``/logout``. Use sparingly:
    login pages and static assets only. The Host check still applies to public paths.
    """


@hookspec
def carme_register_api_paths(server: Server) -> list[str]:
    """Return path prefixes (relative to the app) that serve API clients rather than pages.

    Called once at app creation. A request there without credentials is refused with 403 JSON,
    never sent to the login page, even when it accepts ``text/html``; elsewhere a browser asking
    for a page is redirected. Same form as :func:`carme_register_public_paths`. The core's own are
    ``/api``, ``/api/``, ``/files/`` and ``/kernelspecs/``.
    """


@hookspec
def carme_register_middleware(server: Server) -> list[Middleware]:
    """Return Starlette ``Middleware`` entries wrapped around the app, inside authentication.

    Called once at app creation; the middleware stack is built once and never changes.
    """


@hookspec
def carme_extra_settings(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """Settings this plugin derives from the process's surroundings, by dotted name.

    Called once while the configuration is read, after :func:`carme_register_settings`, with the
    environment carme reads (``os.environ``, or create_app's ``environ``). Return a dict of
    setting name -> value (any plugin's settings, the core's included), or None. The answers form
    one layer over config files and ``CARME_*`` variables, under the command line and create_app
    arguments (later plugins win). The hub extension turns a JupyterHub spawner's ``JUPYTERHUB_*``
    variables into ``base_url``, ``ip``, ``port`` and its own settings this way, so ``carme serve``
    started by a hub serves where the hub expects it.
    """


# --------------------------------------------------------------------------------------------
# Command line: called once by the ``carme`` command, before any app exists.
# --------------------------------------------------------------------------------------------


@hookspec
def carme_register_cli_commands() -> list[Command]:
    """Return ``carme`` subcommands this plugin adds (``carme dashboard``, ``carme singleuser``).

    Called once by the ``carme`` command before it parses its arguments, on the built-in plugins
    and the extensions the configuration enables (config files and ``CARME_EXTENSIONS__*``; a
    disabled extension adds no command). Return a list of :class:`carme.cli.Command`: ``name``,
    ``help``, ``add_arguments(parser)`` declaring the command's arguments on its own argparse
    subparser, and ``run(args)`` returning the exit code. To serve an app of its own, ``run``
    builds it with :func:`carme.cli.app_from_args` (the flags of
    :func:`carme.cli.add_server_arguments`, plus any :func:`carme.create_app` argument) and
    serves it with :func:`carme.cli.serve_app`. A name the core or another plugin already has
    is refused with an error naming both; the other commands keep working.
    """


# --------------------------------------------------------------------------------------------
# Lifecycle: called from the ASGI lifespan.
# --------------------------------------------------------------------------------------------


@hookspec
def carme_startup(server: Server) -> Awaitable[None] | None:
    """Start this plugin's services. May be awaitable.

    Called in registration order (core services first) when the ASGI lifespan starts
    (``server.state`` is ``starting``). Publish services for other extensions with
    ``server.services[name] = obj``; require one with ``server.services[name]`` (or the core's
    typed attributes, ``server.kernels``), which raises :class:`carme.server.ServiceUnavailable`
    saying why when it is not published; ``server.services.get(name)`` for one that may be
    absent. An exception aborts start-up with a message naming the plugin; raise
    :class:`carme.config.ConfigError` naming the setting for a setting this plugin refuses (a
    template that does not exist, two settings that disagree): ``carme serve`` then reports it as
    a configuration error (one line, exit 2), other exceptions as a failed start (exit 3).
    """


@hookspec
def carme_shutdown(server: Server) -> Awaitable[None] | None:
    """Stop this plugin's services. May be awaitable.

    Called in reverse registration order when the ASGI lifespan ends (Ctrl-C, SIGTERM,
    /api/shutdown, or the embedding app stopping). Exceptions are logged, never raised, so every
    plugin gets to stop.
    """


# --------------------------------------------------------------------------------------------
# Replaceable services: the first non-None answer wins.
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def carme_contents_manager(server: Server) -> ContentsManager | None:
    """Return the contents manager that serves /api/contents and /files.

    Called once at start-up. The built-in file-system manager answers last, so an extension that
    returns one replaces it. Return None to leave the choice to others.
    """


@hookspec(firstresult=True)
def carme_kernel_spec_manager(server: Server) -> KernelSpecManager | None:
    """Return the kernelspec manager that serves /api/kernelspecs and names the specs kernels start from.

    Called once at start-up. The built-in one (the Jupyter data paths) answers last, so an
    extension that returns one replaces it: the gateway extension lists the specs of a remote
    Jupyter Enterprise Gateway. Its methods are called off the event loop (in a worker thread),
    so they may block on I/O. Return None to leave the choice to others.
    """


@hookspec(firstresult=True)
def carme_kernel_provisioner(server: Server, spec: KernelSpec, user: User | None) -> Provisioner | None:
    """Return the provisioner that launches a kernel of ``spec`` for ``user``.

    Called each time a kernel starts. ``user`` is the :class:`carme.auth.User` who asked for it
    (the request of ``POST /api/kernels``, or of the session that starts it); None when carme
    starts it by itself or the request's identity is the anonymous stand-in of token auth (see
    :meth:`carme.auth.Authenticator.named_user`). A remote provisioner runs the kernel as that
    user (the gateway extension sends it as ``KERNEL_USERNAME``). The built-in provisioner (a
    local process in its own process group) answers last. Return None to leave the kernel to others.
    """


@hookspec(firstresult=True)
def carme_user_from_connection(server: Server, connection: HTTPConnection) -> (
        Awaitable[User | AuthResult | None] | User | AuthResult | None):
    """Identify who makes a request or opens a websocket (``connection``). May be awaitable.

    Called for every request and websocket that is not public, before the token is looked at
    (unless ``auth_enabled`` is off). Return a :class:`carme.auth.User` to let it in, None to
    leave the decision to the next plugin; the built-in token and login cookie answer last.
    Raise ``carme.errors.ApiError(403, ...)`` to refuse outright. An identity from this hook is
    treated like a cookie (ambient): unsafe requests need the ``_xsrf`` cookie echoed in
    ``X-XSRFToken`` and other origins are refused. Return ``carme.auth.AuthResult(user,
    by_token=True)`` instead when the credential is one a browser never sends by itself (an
    ``Authorization`` header): that request skips the Origin and XSRF checks, as one carrying
    carme's own token does. Browsers that nobody identifies are sent to
    the ``login_url`` setting (an embedding product's own sign-in page) or carme's ``/login``.
    """


# --------------------------------------------------------------------------------------------
# Authorization: called before a route runs (and by /api/me, contents models, kernel websockets).
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def carme_permission(server: Server, user: User, action: str, resource: str,
                     path: str | None) -> Awaitable[bool | None] | bool | None:
    """Whether ``user`` may perform ``action`` on ``resource``. May be awaitable.

    ``action`` is ``read``, ``write`` or ``execute`` (or an extension's own verb); ``resource`` is
    one of the core's ``contents``, ``kernels``, ``kernelspecs``, ``sessions``, ``events``,
    ``server`` or a name an extension declares (``lab``, ``dashboards``, ``collaboration``, ...);
    ``path`` is the API path the action applies to (``/``-separated, normalised, ``""`` for the
    root) where there is one, else None. ``user`` is the :class:`carme.auth.User` of the request.

    Return True (allowed), False (denied) or None (no opinion). Unlike other thing-named hooks
    every implementation is asked, one at a time: any False denies, and so does an exception or
    any other answer (authorization fails closed); with no False anywhere the user is allowed, so
    without an implementation every authenticated user may do everything. Called before every
    route that declares the permission (:func:`carme.api.permissions.authorized`), by ``/api/me``
    for each permission a client asks about, per file for the ``writable`` of contents models,
    and once per kernel websocket for ``execute`` on ``kernels`` (without it the websocket can
    watch but not run code). A denial answers 403 JSON naming ``action`` and ``resource`` and
    publishes a ``https://events.carme.dev/authorization/denied/v1`` event on the bus.
    Keep it fast: it runs on every request.
    """


# --------------------------------------------------------------------------------------------
# Notifications.
# --------------------------------------------------------------------------------------------


@hookspec
def carme_on_kernel_started(server: Server, kernel: Kernel) -> Awaitable[None] | None:
    """``kernel`` (a :class:`carme.kernels.kernel.Kernel`) has started and answered
    kernel_info. May be awaitable.

    Called once per kernel, after start (not after restarts). Subscribe to its messages here
    with ``kernel.subscribe(callback)``.
    """


@hookspec
def carme_on_kernel_stopped(server: Server, kernel: Kernel) -> Awaitable[None] | None:
    """``kernel`` has shut down or died for good. May be awaitable.

    Called once per kernel announced by :func:`carme_on_kernel_started`, also for the kernels
    still running when the server shuts down.
    """


@hookspec
def carme_on_contents_changed(server: Server, action: str, path: str, source_path: str | None) -> Awaitable[None] | None:
    """The contents API changed a file or directory. May be awaitable.

    ``action`` is one of ``create``, ``save``, ``upload``, ``rename``, ``copy``, ``delete``;
    ``path`` is the API path (relative to the root, ``/``-separated); ``source_path`` is set for
    rename and copy. Called after the change is on disk.
    """


@hookspec
def carme_before_save(server: Server, path: str, model: dict[str, Any]) -> Awaitable[None] | None:
    """A file or notebook is about to be saved through the contents API (PUT). May be awaitable.

    ``path`` is the API path; ``model`` is the model being saved (``type``, ``format``,
    ``content``: for a notebook, the notebook as a dict; for a file, a str, except in a body of
    more than 8 MiB, where it is a :class:`carme.contents.streamed.StreamedText` still in the
    request's buffer: iterate it for str pieces, or put a str in its place). Change it in place
    to change what is written (jupyter_server's ``pre_save_hook``): the widgets extension adds
    the live widget state to the notebook metadata. Called before the write, by the contents route, whatever
    contents manager serves it. Exceptions are logged and the save goes on unchanged by that plugin.
    """


# Hooks renamed when the grammar was set: implementing or calling an old name is an error that
# gives the new one (never a hook silently left uncalled).
RENAMED = {
    "carme_add_hookspecs": "carme_register_hookspecs (which returns the hookspec holders)",
    "carme_authenticate": "carme_user_from_connection",
    "carme_pre_save": "carme_before_save",
    "carme_file_changed": "carme_watch_on_files_changed",
    "carme_lab_page_config": "carme_lab_extra_page_config",
    "carme_lab_labextension_paths": "carme_lab_register_labextension_paths",
    "carme_authorize": "carme_permission",  # the authorization issue's name, before the grammar
}


def hookspec_names() -> list[str]:
    """Names of the hookspecs declared in this module (used by the docs and hook tests)."""
    return sorted(name for name, value in globals().items() if name.startswith("carme_") and callable(value))


__all__ = ["PROJECT", "RENAMED", "hookimpl", "hookspec", "hookspec_names"]
