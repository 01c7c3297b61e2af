"""Authorization: whether a user may perform an action on a resource, decided by plugins.

Every plugin implementing :func:`carme.hooks.carme_permission` is asked; any False denies, True
and None (no opinion) allow, so with no plugin holding an opinion every authenticated user may do
everything (as before authorization existed). A plugin that raises or answers something other
than True, False or None denies too: authorization fails closed.

A denial is published on the event bus (:data:`DENIED_SCHEMA`: who, what, which path, which
plugin said no; the bus adds when) so a product can audit it. The routes check the permissions
they declare (:mod:`carme.api.permissions`) through :meth:`Authorizer.require`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .errors import ApiError
from .events import EventSchema
from .plugins import await_maybe

if TYPE_CHECKING:
    from .auth import User
    from .server import Server

log = logging.getLogger("carme.authorization")

HOOK = "carme_permission"
ACTIONS = ("read", "write", "execute")
# The core's resources; extensions add their own names ("dashboards", "lab", "collaboration").
CORE_RESOURCES = ("contents", "kernels", "kernelspecs", "sessions", "events", "server")

DENIED_SCHEMA = "https://events.carme.dev/authorization/denied/v1"
DENIED_EVENT = EventSchema(
    DENIED_SCHEMA, 1, "A user was refused an action on a resource",
    {"username": {"type": "string"}, "action": {"type": "string"}, "resource": {"type": "string"},
     "path": {"type": ["string", "null"]}, "plugin": {"type": "string"}, "detail": {"type": "string"}},
    ("username", "action", "resource"),
)


class Forbidden(ApiError):
    """403: ``user`` may not perform ``action`` on ``resource`` (and ``path``)."""

    def __init__(self, username: str, action: str, resource: str, path: str | None = None) -> None:
        where = f" (path {path!r})" if path is not None else ""
        super().__init__(403, f"User {username} is not authorized to {action} on resource: {resource}{where}",
                         "Forbidden", {"action": action, "resource": resource, "path": path})
        self.action = action
        self.resource = resource
        self.path = path


class Authorizer:
    """Asks the plugins; publishes denials. One per server (``server.authorizer``)."""

    def __init__(self, server: Server) -> None:
        self.server = server

    @property
    def active(self) -> bool:
        """Whether any plugin holds opinions; without one nothing is asked (the hot path stays free)."""
        return bool(self.server.plugins.implementers(HOOK))

    async def decide(self, user: User | None, action: str, resource: str,
                     path: str | None = None) -> str | None:
        """None when allowed, else the name of the plugin that denied (or failed to answer)."""
        plugins = self.server.plugins
        names = plugins.implementers(HOOK)
        if names and user is None:
            return "carme (no user)"  # a declared permission on a request nobody identified
        for name in names:
            try:
                answer = await await_maybe(plugins.call(name, HOOK, server=self.server, user=user, action=action,
                                                        resource=resource, path=path))
            except Exception:
                log.exception("plugin %s failed in %s(%s, %s, %r): denied", name, HOOK, action, resource, path)
                return name
            if answer is False:
                return name
            if answer is not None and answer is not True:
                log.error("plugin %s answered %r in %s; only True, False or None are answers: denied",
                          name, answer, HOOK)
                return name
        return None

    async def allowed(self, user: User | None, action: str, resource: str, path: str | None = None) -> bool:
        """Whether ``user`` may perform ``action`` on ``resource`` (at ``path``). No event."""
        return await self.decide(user, action, resource, path) is None

    async def require(self, user: User | None, action: str, resource: str, path: str | None = None) -> None:
        """Raise :class:`Forbidden` (and publish the denial) unless allowed."""
        denied_by = await self.decide(user, action, resource, path)
        if denied_by is None:
            return
        self.publish(user, action, resource, path, denied_by)
        raise Forbidden(user.username if user is not None else "", action, resource, path)

    def publish(self, user: User | None, action: str, resource: str, path: str | None, denied_by: str,
                detail: str | None = None) -> None:
        """Log a denial and publish it on the bus; ``detail`` says more (a refused kernel message)."""
        username = user.username if user is not None else ""
        log.info("denied: user %r %s on %s%s (by %s)%s", username, action, resource,
                 f" {path!r}" if path is not None else "", denied_by, f": {detail}" if detail else "")
        data = {"username": username, "action": action, "resource": resource, "path": path, "plugin": denied_by}
        if detail:
            data["detail"] = detail
        self.server.events.emit(DENIED_SCHEMA, data)

    async def permissions(self, user: User | None, wanted: dict[str, list[str]]) -> dict[str, list[str]]:
        """For each resource the actions of ``wanted`` the user may perform (/api/me's answer)."""
        return {resource: [action for action in actions if await self.allowed(user, action, resource)]
                for resource, actions in wanted.items()}
