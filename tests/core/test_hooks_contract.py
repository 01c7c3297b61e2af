"""The hook contract is documented and tested by rule (after Datasette's tests/test_docs.py).

Every hookspec, carme's own and those the installed extensions add: follows the naming grammar
of carme.hooks, has typed arguments and a docstring naming each of them, and has a test named
test_hook_<name> under tests/. The core's signatures are pinned here, so changing one (which
breaks every extension implementing it) is a deliberate edit of this file. Every implementation
shipped in this repository matches its hookspec: no argument the spec lacks, no ``async def``
where the caller does not await."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import pytest

from carme import hooks
from carme.plugins import Plugins, installed_extensions

TESTS = Path(__file__).resolve().parents[1]

# The core's hooks exactly as extensions implement them: change a line only with the contract.
CORE_SIGNATURES = {
    "carme_before_save": "(server: 'Server', path: 'str', model: 'dict[str, Any]') -> 'Awaitable[None] | None'",
    "carme_contents_manager": "(server: 'Server') -> 'ContentsManager | None'",
    "carme_extra_settings": "(environ: 'Mapping[str, str]') -> 'dict[str, Any] | None'",
    "carme_kernel_provisioner": "(server: 'Server', spec: 'KernelSpec', user: 'User | None') -> 'Provisioner | None'",
    "carme_kernel_spec_manager": "(server: 'Server') -> 'KernelSpecManager | None'",
    "carme_on_contents_changed": "(server: 'Server', action: 'str', path: 'str', source_path: 'str | None') -> "
                                 "'Awaitable[None] | None'",
    "carme_on_kernel_started": "(server: 'Server', kernel: 'Kernel') -> 'Awaitable[None] | None'",
    "carme_on_kernel_stopped": "(server: 'Server', kernel: 'Kernel') -> 'Awaitable[None] | None'",
    "carme_permission": "(server: 'Server', user: 'User', action: 'str', resource: 'str', path: 'str | None') -> "
                        "'Awaitable[bool | None] | bool | None'",
    "carme_register_api_paths": "(server: 'Server') -> 'list[str]'",
    "carme_register_cli_commands": "() -> 'list[Command]'",
    "carme_register_event_schemas": "() -> 'list[EventSchema]'",
    "carme_register_hookspecs": "() -> 'list[object]'",
    "carme_register_middleware": "(server: 'Server') -> 'list[Middleware]'",
    "carme_register_public_paths": "(server: 'Server') -> 'list[str]'",
    "carme_register_routes": "(server: 'Server') -> 'list[BaseRoute]'",
    "carme_register_settings": "() -> 'list[Setting]'",
    "carme_shutdown": "(server: 'Server') -> 'Awaitable[None] | None'",
    "carme_startup": "(server: 'Server') -> 'Awaitable[None] | None'",
    "carme_user_from_connection": "(server: 'Server', connection: 'HTTPConnection') -> "
                                  "'Awaitable[User | AuthResult | None] | User | AuthResult | None'",
}

# The grammar of carme.hooks; a firstresult hook names the thing it returns, every other hook
# says with its first word what kind of hook it is.
KEYWORD_FORMS = re.compile(r"register_[a-z_]+|startup|shutdown|on_[a-z_]+_[a-z]+ed|before_[a-z_]+|extra_[a-z_]+")
THING_FORM = re.compile(r"(?!(register|on|before|extra)_)[a-z]+(_[a-z]+)*")


def loaded_plugins() -> Plugins:
    """The built-ins and every installed extension, enabled."""
    plugins = Plugins()
    plugins.register_builtins()
    plugins.load_extensions({})
    assert {name: info.error for name, info in plugins.extensions.items() if info.error} == {}
    return plugins


PLUGINS = loaded_plugins()
SPECS: dict[str, pluggy.HookCaller] = {name: caller for name, caller in vars(PLUGINS.pm.hook).items()
                                       if not name.startswith("_") and caller.spec is not None}


def spec_function(name: str) -> Callable[..., Any]:
    spec = SPECS[name].spec
    assert spec is not None
    return spec.function


def declaring_extension(name: str) -> str | None:
    """The extension whose package declares hookspec ``name`` (None for the core's)."""
    module = spec_function(name).__module__
    if module == hooks.__name__:
        return None
    package = module.split(".")[0]
    owners = [ext for ext, ep in installed_extensions().items() if ep.value.split(".")[0].split(":")[0] == package]
    assert owners, f"hookspec {name} is declared by {module}, which no installed extension ships"
    return owners[0]


def test_core_hookspecs_are_pinned() -> None:
    assert {name: str(inspect.signature(getattr(hooks, name))) for name in hooks.hookspec_names()} == CORE_SIGNATURES
    assert set(hooks.hookspec_names()) <= set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hookspec_follows_the_grammar(name: str) -> None:
    owner = declaring_extension(name)
    prefix = f"carme_{owner}_" if owner else "carme_"
    assert name.startswith(prefix), f"{name}: an extension's hookspecs are named {prefix}..."
    rest = name[len(prefix):]
    spec = SPECS[name].spec
    assert spec is not None
    if spec.opts["firstresult"]:
        assert THING_FORM.fullmatch(rest), f"{name}: a firstresult hook is named for the thing it returns"
    else:
        assert KEYWORD_FORMS.fullmatch(rest), f"{name}: not one of the forms in carme.hooks' docstring"
    returns = str(inspect.signature(spec.function).return_annotation)
    if rest.startswith("register_"):
        assert returns.startswith("list[") and "Awaitable" not in returns, f"{name}: returns a list, synchronously"
    elif spec.opts["firstresult"]:
        assert returns.endswith("| None"), f"{name}: None leaves the answer to the next plugin"
    elif rest.startswith("extra_"):
        assert returns.endswith("| None"), f"{name}: None adds nothing"
    else:
        assert returns in ("None", "Awaitable[None] | None"), f"{name}: a notification returns nothing"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hookspec_is_typed_and_documented(name: str) -> None:
    function = spec_function(name)
    signature = inspect.signature(function)
    doc = inspect.getdoc(function) or ""
    assert len(doc) > 40, f"hookspec {name} needs a docstring saying when it is called and what it returns"
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: annotate what it returns"
    for parameter in signature.parameters.values():
        assert parameter.annotation is not inspect.Parameter.empty, f"{name}: annotate {parameter.name}"
        if parameter.name != "server":
            assert f"``{parameter.name}``" in doc, f"{name}: the docstring says nothing of ``{parameter.name}``"
    may_await = "Awaitable" in str(signature.return_annotation)
    assert may_await == ("May be awaitable" in doc), f"{name}: the docstring and the annotation disagree on awaiting"


def _test_names() -> set[str]:
    names: set[str] = set()
    for path in TESTS.rglob("test_*.py"):
        names.update(re.findall(r"^\s*(?:async\s+)?def (test_hook_\w+)\(", path.read_text(), re.MULTILINE))
    return names


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hookspec_has_a_test(name: str) -> None:
    tests = _test_names()
    assert any(test == f"test_hook_{name}" or test.startswith(f"test_hook_{name}_") for test in tests), \
        f"no test named test_hook_{name} under tests/"


def shipped_implementations() -> list[tuple[str, pluggy.HookImpl]]:
    """Every hook implementation of the built-ins, the installed extensions and the example product."""
    from examples.product.app import ProductAuth

    plugins = loaded_plugins()
    plugins.register(ProductAuth(None), name="examples.product")  # type: ignore[arg-type]
    return [(name, impl) for name, caller in vars(plugins.pm.hook).items() if not name.startswith("_")
            for impl in caller.get_hookimpls()]


@pytest.mark.parametrize(("hook", "impl"), shipped_implementations(),
                         ids=lambda value: value if isinstance(value, str) else value.plugin_name)
def test_shipped_implementation_matches_its_hookspec(hook: str, impl: pluggy.HookImpl) -> None:
    assert hook in SPECS, f"{impl.plugin_name} implements {hook}, which nothing declares"
    function = spec_function(hook)
    allowed = set(inspect.signature(function).parameters)
    assert set(impl.argnames) <= allowed, f"{impl.plugin_name}.{hook} takes arguments its hookspec lacks"
    if inspect.iscoroutinefunction(impl.function):
        assert "Awaitable" in str(inspect.signature(function).return_annotation), \
            f"{impl.plugin_name}.{hook} is async, but {hook} is not awaited"
