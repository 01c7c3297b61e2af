"""The plugin manager: built-in plugins, entry-point discovery, enabled state and load errors.

One :class:`Plugins` per app (never a module global), so two carme apps in one process never
share plugins or state. Built-in plugins are essential: they cannot be disabled, only replaced
through the firstresult hooks.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import reprlib
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

import pluggy

from . import hooks
from .config import Setting

log = logging.getLogger("carme.plugins")
trace_log = logging.getLogger("carme.hooks")  # CARME_TRACE_HOOKS

ENTRY_POINT_GROUP = "carme.extensions"
TRACE_ENV = "CARME_TRACE_HOOKS"  # set to log every hook call (pluggy hook-call monitoring)
T = TypeVar("T")

# Built-in plugins, registered first and in this order (so they answer last in firstresult hooks).
BUILTIN_MODULES = (
    "carme.builtins.events",
    "carme.builtins.auth",
    "carme.builtins.server",
    "carme.builtins.contents",
    "carme.builtins.kernels",
    "carme.builtins.sessions",
)


async def await_maybe(value: T | Awaitable[T]) -> T:
    """Await ``value`` if it is awaitable (hook implementations may be sync or async)."""
    if inspect.isawaitable(value):
        return await value
    return value


class PluginError(RuntimeError):
    """A plugin failed while the app was being assembled; the message names the plugin and hook."""


_short = reprlib.Repr()
_short.maxstring = _short.maxother = 80


def _describe(kwargs: Mapping[str, object]) -> str:
    """Hook arguments for the trace, each cut short (a notebook model can be megabytes)."""
    return ", ".join(f"{key}={_short.repr(value)}" for key, value in kwargs.items())


def _trace_before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]) -> None:
    called = ", ".join(impl.plugin_name for impl in reversed(impls)) or "no plugin"
    trace_log.info("%s(%s) -> %s", hook_name, _describe(kwargs), called)


def _trace_after(outcome: pluggy.Result[object], hook_name: str, impls: Sequence[pluggy.HookImpl],
                 kwargs: Mapping[str, object]) -> None:
    if outcome.exception is not None:
        trace_log.info("%s raised %s: %s", hook_name, type(outcome.exception).__name__, outcome.exception)
    else:
        trace_log.info("%s returned %s", hook_name, _short.repr(outcome.get_result()))


@dataclass
class ExtensionInfo:
    """What ``carme extension list`` shows for one installed extension."""

    name: str
    distribution: str
    version: str
    enabled: bool
    source: str
    error: str | None = None
    entry_point: EntryPoint | None = None

    @property
    def loads(self) -> bool:
        return self.error is None


def installed_extensions() -> dict[str, EntryPoint]:
    """Entry points of the ``carme.extensions`` group, by extension name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


class Plugins:
    """A pluggy PluginManager plus carme's bookkeeping: names, sections and load errors."""

    def __init__(self, trace: bool | None = None) -> None:
        """``trace`` logs every hook call (plugins called, arguments, result) to ``carme.hooks``;
        by default it is on when the ``CARME_TRACE_HOOKS`` environment variable is set."""
        self.pm = pluggy.PluginManager(hooks.PROJECT)
        if os.environ.get(TRACE_ENV) if trace is None else trace:
            self.pm.add_hookcall_monitoring(_trace_before, _trace_after)
        self.pm.add_hookspecs(hooks)
        # Historic: every plugin registered from now on gets to add its hookspecs as it arrives.
        self.pm.hook.carme_register_hookspecs.call_historic(result_callback=self._add_hookspecs, kwargs={})
        self.extensions: dict[str, ExtensionInfo] = {}
        self.builtins: list[str] = []
        self.declared_by: dict[str, str] = {}  # setting key -> the plugin that declares it

    def _add_hookspecs(self, declared: Iterable[object]) -> None:
        for holder in declared:
            self.pm.add_hookspecs(holder)

    @property
    def hook(self) -> Any:
        """The pluggy hook relay: ``plugins.hook.carme_startup(server=...)``."""
        return self.pm.hook

    def register_builtins(self) -> None:
        """Register the core's own plugins. One that cannot be imported is a start-up error:
        carme never runs with a core service silently missing."""
        for module_name in BUILTIN_MODULES:
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                raise PluginError(f"built-in plugin {module_name!r} cannot be imported: "
                                  f"{type(exc).__name__}: {exc}") from exc
            self._register(module, module_name)
            self.builtins.append(module_name)

    def _register(self, plugin: object, name: str) -> None:
        """Register one plugin; hook wrappers are refused with a :class:`PluginError` naming it."""
        wrappers = [attr for attr in dir(plugin) if (opts := self.pm.parse_hookimpl_opts(plugin, attr)) is not None
                    and (opts.get("wrapper") or opts.get("hookwrapper"))]
        if wrappers:
            # carme calls each plugin's implementation on its own (start-up order, per-plugin
            # errors, route owners), so a wrapper would never see the calls it means to wrap.
            raise PluginError(f"plugin {name!r}: {', '.join(wrappers)} is a hook wrapper (wrapper=True or "
                              "hookwrapper=True), which carme does not support; implement the hook plainly")
        self.pm.register(plugin, name=name)

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register an extra plugin object (create_app ``plugins=[...]``); returns its name.

        The name is also the plugin's settings section: ``name``, else the plugin's ``name``
        attribute, else the last part of its module or class name.
        """
        if name is None:
            attr = getattr(plugin, "name", None)
            if isinstance(attr, str) and attr:
                name = attr
            elif inspect.ismodule(plugin):
                name = plugin.__name__.rsplit(".", 1)[-1]
            else:
                name = (plugin if inspect.isclass(plugin) else type(plugin)).__name__.lower()
        if self.pm.has_plugin(name):
            raise ValueError(f"a plugin named {name!r} is already registered; pass another name")
        self._register(plugin, name)
        return name

    def load_extensions(self, states: dict[str, tuple[bool, str]], only: Iterable[str] | None = None) -> None:
        """Load every installed extension that is enabled; record the rest and any load error.

        ``states`` maps name -> (enabled, source). Extensions are enabled by default when installed.
        ``only``, when given, is the exact set to enable (create_app ``extensions=[...]``).
        """
        wanted = set(only) if only is not None else None
        for name, ep in sorted(installed_extensions().items()):
            if wanted is not None:
                enabled, source = name in wanted, "create_app(extensions=...)"
            else:
                enabled, source = states.get(name, (True, "default"))
            dist = ep.dist
            info = ExtensionInfo(name, dist.name if dist else "?", dist.version if dist else "?", enabled, source,
                                 entry_point=ep)
            self.extensions[name] = info
            if not enabled:
                continue
            info.error = self._load(name, ep)
            if info.error:
                log.error("extension %r failed to load: %s", name, info.error)
        for name, error in self._unknown_hooks().items():
            if name not in self.extensions:  # a plugin the embedding code passed in
                raise PluginError(f"plugin {name!r} {error}")
            self.pm.unregister(name=name)
            self.extensions[name].error = error
            log.error("extension %r failed to load: %s", name, error)

    def _load(self, name: str, ep: EntryPoint) -> str | None:
        """Import and register one extension; the error text when that fails."""
        try:
            self._register(ep.load(), name)
        except Exception as exc:  # a broken extension must not stop the others
            if self.pm.has_plugin(name):
                self.pm.unregister(name=name)
            return f"{type(exc).__name__}: {exc}"
        return None

    def _unknown_hooks(self) -> dict[str, str]:
        """Plugins (other than the built-ins) implementing a hook that no plugin declares: a
        typo, usually, or a hook's old name.

        Checked after every extension is in, since one may implement another's hookspecs. A hook
        named for an extension that is not loaded (``carme_watch_...`` without watch) is not an
        error: that extension is not installed or not enabled, so the hook is never called.
        """
        core_forms = {name.split("_")[1] for name in hooks.hookspec_names()}  # register, on, startup, ...
        errors: dict[str, str] = {}
        for hook_name, caller in vars(self.pm.hook).items():
            if hook_name.startswith("_") or caller.has_spec():
                continue
            form = hook_name.split("_")[1] if hook_name.startswith(hooks.PROJECT + "_") else ""
            owner = next((ext for ext in self.extensions if hook_name.startswith(f"{hooks.PROJECT}_{ext}_")), None)
            if hook_name in hooks.RENAMED:
                error = f"implements {hook_name!r}, which is now named {hooks.RENAMED[hook_name]}"
            elif form and form not in core_forms and (owner is None or not self.pm.has_plugin(owner)):
                continue  # another extension's hook, and that extension is absent
            else:
                error = f"implements unknown hook {hook_name!r} (no enabled extension declares it)"
            for impl in caller.get_hookimpls():
                if impl.plugin_name not in self.builtins and (not impl.optionalhook or hook_name in hooks.RENAMED):
                    errors.setdefault(impl.plugin_name, error)
        return errors

    def probe(self, name: str) -> str | None:
        """Try to load an installed extension without enabling it (``carme extension list``)."""
        info = self.extensions[name]
        if info.error is not None or self.pm.has_plugin(name) or info.entry_point is None:
            return info.error
        scratch = Plugins()
        scratch.register_builtins()
        scratch.extensions[name] = info
        error = scratch._load(name, info.entry_point) or scratch._unknown_hooks().get(name)
        return error

    def runs(self, name: str) -> bool:
        """Whether the installed extension ``name`` is loaded: enabled, imported and registered."""
        info = self.extensions.get(name)
        return info is not None and info.enabled and info.error is None and self.pm.has_plugin(name)

    def name_of(self, plugin: object) -> str:
        return self.pm.get_name(plugin) or repr(plugin)

    def section_of(self, name: str) -> str | None:
        """The settings section of a registered plugin: None for built-ins, else its name."""
        return None if name in self.builtins else name

    def _caller(self, hook_name: str) -> pluggy.HookCaller:
        """The hook caller of a declared hook; calling one nobody declares is a bug, said loudly."""
        caller: pluggy.HookCaller | None = getattr(self.pm.hook, hook_name, None)
        if caller is None or not caller.has_spec():
            renamed = f" (it is now named {hooks.RENAMED[hook_name]})" if hook_name in hooks.RENAMED else ""
            raise PluginError(f"no hook named {hook_name!r} is declared{renamed}")
        return caller

    def implementers(self, hook_name: str, reverse: bool = False) -> list[str]:
        """Names of the plugins implementing a hook, in registration order (``tryfirst`` ones
        first, ``trylast`` last), or the reverse; pluggy's own call order is the reverse, which is
        right for firstresult hooks (the built-ins, registered first, answer last) but not for
        "each plugin in turn"."""
        impls = self._caller(hook_name).get_hookimpls()
        impls = sorted(impls, key=lambda impl: 0 if impl.tryfirst else 2 if impl.trylast else 1)
        names = [impl.plugin_name for impl in impls]
        return names[::-1] if reverse else names

    def call(self, plugin_name: str, hook_name: str, **kwargs: Any) -> Any:
        """Call one plugin's implementation of a hook, through pluggy (so it is traced); its
        answer, or None. Exceptions propagate: the caller decides what one plugin's failure means."""
        caller = self._caller(hook_name)
        others = [impl.plugin for impl in caller.get_hookimpls() if impl.plugin_name != plugin_name]
        result = self.pm.subset_hook_caller(hook_name, others)(**kwargs)
        if caller.spec is not None and caller.spec.opts.get("firstresult"):
            return result
        return result[0] if result else None

    async def first(self, hook_name: str, **kwargs: Any) -> Any:
        """The first answer that is not None to a firstresult hook whose implementations may be
        awaitable: plugins are asked one at a time in pluggy's order (the last registered first,
        the built-ins last), each answer awaited before the next plugin is asked. (pluggy alone
        would take an ``async def``'s coroutine as the answer even when it resolves to None.)"""
        for impl in reversed(self._caller(hook_name).get_hookimpls()):
            result = await await_maybe(self.call(impl.plugin_name, hook_name, **kwargs))
            if result is not None:
                return result
        return None

    def each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call one hook on each plugin separately, in registration order: [(plugin name, result)]
        for the answers that are not None; a failure raises :class:`PluginError` naming the plugin.

        Used where the caller must know which plugin answered (settings sections, route owners).
        """
        results = []
        for name in self.implementers(hook_name):
            try:
                result = self.call(name, hook_name, **kwargs)
            except Exception as exc:
                raise PluginError(f"plugin {name!r} failed in {hook_name}: {type(exc).__name__}: {exc}") from exc
            if result is not None:
                results.append((name, result))
        return results

    def settings_specs(self) -> dict[str, Setting]:
        """Every declared setting by dotted key; extension settings are put in their section.
        Which plugin declared each is kept in :attr:`declared_by`."""
        specs: dict[str, Setting] = {}
        for name, declared in self.each("carme_register_settings"):
            section = self.section_of(name)
            for setting in declared:
                key = setting.name if section is None else f"{section}.{setting.name}"
                if key in specs:
                    raise PluginError(f"setting {key!r} is declared twice (by {self.declared_by[key]!r}, "
                                      f"then by {name!r})")
                specs[key] = setting
                self.declared_by[key] = name
        return specs
