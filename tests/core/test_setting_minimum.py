"""Numeric settings below their declared minimum (a negative count, duration or size) are refused
where they are set, with the message of every other bad value: source, key, value, what is valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carme.app import create_app
from carme.config import ConfigError, Setting
from tests.processes import BUNDLED

# The settings review found accepting nonsense, one per extension at least (the rest are covered
# by test_every_numeric_setting_refuses_a_value_below_its_minimum).
REVIEWED = ["dashboards.max_kernels", "dashboards.queue_size", "dashboards.pool_size",
            "dashboards.grace_period", "dashboards.connect_timeout", "gateway.request_retries",
            "gateway.check_interval", "hub.auth_cache_seconds", "terminals.cull_interval",
            "collab.save_delay", "watch.poll_delay_ms", "port_retries"]


def specs(root: Path) -> dict[str, Setting]:
    return create_app(str(root), extensions=list(BUNDLED), config_files=False).server.settings.specs


def refusal(root: Path, **kwargs: object) -> str:
    with pytest.raises(ConfigError) as raised:
        create_app(str(root), extensions=list(BUNDLED), config_files=False, **kwargs)  # type: ignore[arg-type]
    return str(raised.value)


def expected(spec: Setting) -> str:
    kind = "an integer" if spec.type is int else "a number"
    return f"{kind} >= {spec.minimum:g}" + (" or null" if spec.nullable else "")


def test_every_numeric_setting_declares_a_minimum(root: Path) -> None:
    numeric = {key: spec for key, spec in specs(root).items() if spec.type in (int, float) and not spec.choices}
    assert numeric
    assert [key for key, spec in numeric.items() if spec.minimum is None] == []


@pytest.mark.parametrize("key", REVIEWED)
def test_a_negative_value_is_refused_naming_the_setting(root: Path, key: str) -> None:
    spec = specs(root)[key]
    bad = -1 if spec.type is int else -0.5
    assert refusal(root, settings={key: bad}) == \
        f"create_app: {key} = {bad!r} is not valid: expected {expected(spec)}"


def test_every_numeric_setting_refuses_a_value_below_its_minimum_and_takes_the_minimum(root: Path) -> None:
    for key, spec in specs(root).items():
        if spec.minimum is None:
            continue
        below = spec.minimum - 1
        assert refusal(root, settings={key: below}) == \
            f"create_app: {key} = {below!r} is not valid: expected {expected(spec)}"
        taken = create_app(str(root), extensions=list(BUNDLED), config_files=False, settings={key: spec.minimum})
        assert taken.server.settings[key] == spec.minimum


def test_refused_from_the_environment_and_a_config_file(root: Path, jupyter_env: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARME_DASHBOARDS__MAX_KERNELS", "-2")
    assert refusal(root) == ("environment CARME_DASHBOARDS__MAX_KERNELS: "
                                                            "dashboards.max_kernels = -2 is not valid: "
                                                            "expected an integer >= 0")
    monkeypatch.delenv("CARME_DASHBOARDS__MAX_KERNELS")
    path = jupyter_env / "config" / "carme_config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"dashboards": {"grace_period": -1.5}}))
    with pytest.raises(ConfigError) as raised:
        create_app(str(root), extensions=list(BUNDLED))
    assert str(raised.value) == f"{path}: dashboards.grace_period = -1.5 is not valid: expected a number >= 0"
