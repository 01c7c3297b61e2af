"""The hook contract is documented and tested by rule (after Datasette's tests/test_docs.py):
every hookspec, carme's own and those installed extensions add, has a docstring that says when
it is called, and a test named test_hook_<name> somewhere under tests/."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from carme import hooks
from carme.plugins import Plugins

TESTS = Path(__file__).resolve().parents[1]

# Hooks called only by a core service that is still being built: exempt while that service's
# module does not exist, mandatory as soon as it does (so this list can only shrink).
AWAITING_SERVICE = {
    "carme_contents_manager": "carme.builtins.contents",
    "carme_on_contents_changed": "carme.builtins.contents",
    "carme_kernel_provisioner": "carme.builtins.kernels",
    "carme_on_kernel_started": "carme.builtins.kernels",
    "carme_on_kernel_stopped": "carme.builtins.kernels",
}


def all_hookspecs() -> dict[str, object]:
    """Every hookspec once all installed extensions are loaded: name -> the spec function."""
    plugins = Plugins()
    plugins.register_builtins()
    plugins.load_extensions({})
    return {name: caller.spec.function for name, caller in vars(plugins.pm.hook).items()
            if not name.startswith("_") and caller.spec is not None}


def test_hook_names_are_prefixed() -> None:
    assert all(name.startswith("carme_") for name in all_hookspecs())


def test_core_hookspecs_are_all_found() -> None:
    assert set(hooks.hookspec_names()) <= set(all_hookspecs())
    assert "carme_register_routes" in hooks.hookspec_names()


@pytest.mark.parametrize("name", sorted(all_hookspecs()))
def test_hookspec_has_a_docstring(name: str) -> None:
    doc = (all_hookspecs()[name].__doc__ or "").strip()  # type: ignore[attr-defined]
    assert len(doc) > 20, f"hookspec {name} needs a docstring saying when it is called and what it returns"


def _test_names() -> set[str]:
    names: set[str] = set()
    for path in TESTS.rglob("test_*.py"):
        names.update(re.findall(r"^\s*(?:async\s+)?def (test_hook_\w+)\(", path.read_text(), re.MULTILINE))
    return names


@pytest.mark.parametrize("name", sorted(all_hookspecs()))
def test_hookspec_has_a_test(name: str) -> None:
    service = AWAITING_SERVICE.get(name)
    if service is not None and importlib.util.find_spec(service) is None:
        return  # see AWAITING_SERVICE
    tests = _test_names()
    assert any(test == f"test_hook_{name}" or test.startswith(f"test_hook_{name}_") for test in tests), \
        f"no test named test_hook_{name} under tests/"


def test_awaiting_list_only_names_real_hooks() -> None:
    assert set(AWAITING_SERVICE) <= set(hooks.hookspec_names())
