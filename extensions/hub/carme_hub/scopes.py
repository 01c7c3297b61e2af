"""Whether a visitor's hub scopes grant access to this server (JupyterHub's ``check_scopes``)."""

from __future__ import annotations

from collections.abc import Iterable


def _satisfies(held: str, required: str) -> bool:
    """Whether one held scope covers one required scope (``base`` or ``base!filter``)."""
    if held == required:
        return True
    base, _, wanted = required.partition("!")
    held_base, _, held_filter = held.partition("!")
    if held_base != base:
        return False
    if not held_filter:
        return True  # unfiltered: every resource
    # A user's scope covers each of their servers: user=alice covers server=alice/anything.
    kind, _, name = wanted.partition("=")
    held_kind, _, held_name = held_filter.partition("=")
    return kind == "server" and held_kind == "user" and name.split("/", 1)[0] == held_name


def grants_access(held: Iterable[str], access_scopes: Iterable[str]) -> bool:
    """Any held scope satisfies any of the access scopes. Groups are not resolved (that needs
    the hub's database), so ``!group=`` scopes grant nothing here, as in jupyterhub-singleuser."""
    required = list(access_scopes)
    return any(_satisfies(scope, wanted) for scope in held for wanted in required)
