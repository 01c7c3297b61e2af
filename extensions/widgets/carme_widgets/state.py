"""The widget-state model: the live ipywidgets models of one kernel, kept from comm messages.

Pure data, no I/O: :class:`WidgetStore` takes comm messages (``comm_open``, ``comm_msg`` with
``update`` / ``echo_update`` / ``update_states``, ``comm_close``) as parsed content plus their
binary buffers, whichever side sent them, and answers the state in the notebook widget-state
format (``application/vnd.jupyter.widget-state+json``, version 2.0).

Binary buffers travel beside the JSON (ipywidgets' ``_remove_buffers``): a ``bytes`` value is
taken out of its dict (or replaced by ``null`` in a list) and its place named by a *buffer path*.
The store puts them back in place as ``bytes``, so a later update of the same key replaces the
buffer as well, and takes them out again, base64-encoded, when the state is exported.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

WIDGET_TARGET = "jupyter.widget"
CONTROL_TARGET = "jupyter.widget.control"
STATE_MIMETYPE = "application/vnd.jupyter.widget-state+json"
VIEW_MIMETYPE = "application/vnd.jupyter.widget-view+json"
STRING_CACHE_SIZE = 4096  # distinct short strings shared between the models of one kernel

Path = Sequence[str | int]
BufferLike = bytes | bytearray | memoryview


class BufferPathError(ValueError):
    """A buffer path does not lead into the state it was sent with."""


def put_buffers(state: dict[str, Any], buffer_paths: Sequence[Path], buffers: Sequence[BufferLike]) -> None:
    """Insert ``buffers`` into ``state`` (in place) at ``buffer_paths``, as ``bytes``.

    A path's last element is a dict key (added) or a list index (replacing the ``null`` left there).
    Raises :class:`BufferPathError` when a path is malformed or leads nowhere.
    """
    if len(buffer_paths) > len(buffers):
        raise BufferPathError(f"{len(buffer_paths)} buffer paths but only {len(buffers)} buffers")
    for path, buffer in zip(buffer_paths, buffers, strict=False):
        if not isinstance(path, list | tuple) or not path:
            raise BufferPathError(f"buffer path {path!r} is not a non-empty list")
        target: Any = state
        try:
            for key in path[:-1]:
                target = target[key]
            last = path[-1]
            if isinstance(target, dict) and isinstance(last, str):
                target[last] = bytes(buffer)
            elif isinstance(target, list) and isinstance(last, int) and not isinstance(last, bool):
                target[last] = bytes(buffer)
            else:
                raise BufferPathError(f"buffer path {list(path)!r} does not end in a key or index of the state")
        except (KeyError, IndexError, TypeError) as exc:
            raise BufferPathError(f"buffer path {list(path)!r} does not exist in the state") from exc


def _has_buffer(value: Any) -> bool:
    if isinstance(value, bytes | bytearray | memoryview):
        return True
    if isinstance(value, dict):
        return any(_has_buffer(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_buffer(v) for v in value)
    return False


def remove_buffers(state: Mapping[str, Any]) -> tuple[dict[str, Any], list[list[str | int]], list[bytes]]:
    """Split binary values out of ``state``: (JSON-able state, buffer paths, buffers).

    Dict entries holding bytes are dropped, list items become ``None``; containers are copied only
    on the way to a buffer, so ``state`` itself is never changed.
    """
    paths: list[list[str | int]] = []
    buffers: list[bytes] = []

    def walk(value: Any, path: list[str | int]) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if isinstance(item, bytes | bytearray | memoryview):
                    paths.append([*path, key])
                    buffers.append(bytes(item))
                else:
                    out[key] = walk(item, [*path, key]) if _has_buffer(item) else item
            return out
        if isinstance(value, list | tuple):
            items: list[Any] = []
            for index, item in enumerate(value):
                if isinstance(item, bytes | bytearray | memoryview):
                    paths.append([*path, index])
                    buffers.append(bytes(item))
                    items.append(None)
                else:
                    items.append(walk(item, [*path, index]) if _has_buffer(item) else item)
            return items
        return value

    return walk(dict(state), []), paths, buffers


class WidgetModel:
    """One live widget model: its comm id (the model id) and its current full state."""

    __slots__ = ("model_id", "state")

    def __init__(self, model_id: str, state: dict[str, Any]) -> None:
        self.model_id = model_id
        self.state = state

    @property
    def model_name(self) -> str:
        return str(self.state.get("_model_name", ""))

    @property
    def model_module(self) -> str:
        return str(self.state.get("_model_module", ""))

    @property
    def model_module_version(self) -> str:
        return str(self.state.get("_model_module_version", ""))

    def export(self) -> dict[str, Any]:
        """This model in the widget-state format: model name/module/version, state, buffers."""
        state, paths, buffers = remove_buffers(self.state)
        entry: dict[str, Any] = {
            "model_name": self.model_name,
            "model_module": self.model_module,
            "model_module_version": self.model_module_version,
            "state": state,
        }
        if buffers:
            entry["buffers"] = [
                {"path": path, "data": base64.b64encode(data).decode("ascii"), "encoding": "base64"}
                for path, data in zip(paths, buffers, strict=True)
            ]
        return entry


def _data_with_buffers(data: Any, key: str, buffers: Sequence[BufferLike]) -> dict[str, Any] | None:
    """``data[key]`` (a state dict) with the message's buffers put back; None if it is not a dict."""
    state = data.get(key) if isinstance(data, dict) else None
    if not isinstance(state, dict):
        return None
    paths = data.get("buffer_paths") or []
    if paths:
        put_buffers(state, paths, buffers)
    return state


class WidgetStore:
    """The live widget models of one kernel, kept up to date from comm messages.

    Feed it every ``comm_open`` / ``comm_msg`` / ``comm_close`` content (from the kernel on iopub,
    or from a frontend on shell) with :meth:`apply`; read the result with :meth:`export` or
    :meth:`get`. Only comms of the ``jupyter.widget`` target are models; ``jupyter.widget.control``
    comms are remembered so that their ``update_states`` replies refresh the store.
    Raises :class:`BufferPathError` or :class:`ValueError` for a malformed message, leaving the
    store as it was for that model.
    """

    def __init__(self) -> None:
        self.models: dict[str, WidgetModel] = {}
        self._control: set[str] = set()
        # Short string values repeat in every model (module names, versions, view names, enum
        # values): one shared copy each saves about a third of a model's memory.
        self._strings: dict[str, str] = {}

    def _share_strings(self, state: dict[str, Any]) -> None:
        strings = self._strings
        for key, value in state.items():
            if value.__class__ is str and len(value) < 40 and not value.startswith("IPY_MODEL_"):
                shared = strings.get(value)
                if shared is None:
                    if len(strings) < STRING_CACHE_SIZE:
                        strings[value] = value
                else:
                    state[key] = shared

    def __len__(self) -> int:
        return len(self.models)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self.models

    def __iter__(self) -> Iterator[WidgetModel]:
        return iter(self.models.values())

    def get(self, model_id: str) -> WidgetModel | None:
        return self.models.get(model_id)

    def clear(self) -> None:
        """Forget every model (the kernel restarted: its widgets are gone)."""
        self.models.clear()
        self._control.clear()
        self._strings.clear()

    def apply(self, msg_type: str, content: Mapping[str, Any], buffers: Sequence[BufferLike] = ()) -> str | None:
        """Apply one comm message; return the id of the model it created, changed or closed.

        Messages that are no widget-state change (other targets, ``custom``, ``request_state``)
        return None and change nothing.
        """
        comm_id = content.get("comm_id")
        if not isinstance(comm_id, str):
            raise ValueError(f"{msg_type} without a comm_id")
        data = content.get("data")
        if msg_type == "comm_msg":
            if comm_id in self.models:
                return comm_id if self._update(comm_id, data, buffers) else None
            if comm_id in self._control:
                self._update_states(data, buffers)
            return None
        if msg_type == "comm_open":
            target = content.get("target_name")
            if target == WIDGET_TARGET:
                state = _data_with_buffers(data, "state", buffers)
                if state is None:
                    raise ValueError(f"comm_open of {comm_id} has no data.state object")
                self._share_strings(state)
                self.models[comm_id] = WidgetModel(comm_id, state)
                return comm_id
            if target == CONTROL_TARGET:
                self._control.add(comm_id)
            return None
        if msg_type == "comm_close":
            self._control.discard(comm_id)
            return comm_id if self.models.pop(comm_id, None) is not None else None
        return None

    def _update(self, comm_id: str, data: Any, buffers: Sequence[BufferLike]) -> bool:
        if not isinstance(data, dict) or data.get("method") not in ("update", "echo_update"):
            return False
        changes = _data_with_buffers(data, "state", buffers)
        if changes is None:
            raise ValueError(f"{data.get('method')} of {comm_id} has no state object")
        self.models[comm_id].state.update(changes)
        return True

    def _update_states(self, data: Any, buffers: Sequence[BufferLike]) -> None:
        """A control comm's ``update_states``: the kernel's full state of every model."""
        if not isinstance(data, dict) or data.get("method") != "update_states":
            return
        states = data.get("states")
        if not isinstance(states, dict):
            raise ValueError("update_states without a states object")
        # Buffer paths here start with the model id: [model_id, "state", key, ...].
        put_buffers(states, data.get("buffer_paths") or [], buffers)
        for model_id, entry in states.items():
            state = entry.get("state") if isinstance(entry, dict) else None
            if isinstance(state, dict):
                self._share_strings(state)
                self.models[model_id] = WidgetModel(model_id, state)

    def is_control(self, comm_id: str) -> bool:
        """Whether ``comm_id`` is an open ``jupyter.widget.control`` comm."""
        return comm_id in self._control

    def update_states(self) -> tuple[dict[str, Any], list[bytes]]:
        """The control comm's ``update_states`` answer to ``request_states``, as ipywidgets sends
        it: (data, buffers); ``buffer_paths`` are [model id, "state", ...] into ``states``."""
        full = {model.model_id: {"model_name": model.model_name, "model_module": model.model_module,
                                 "model_module_version": model.model_module_version, "state": model.state}
                for model in self.models.values()}
        states, paths, buffers = remove_buffers(full)
        return {"method": "update_states", "states": states, "buffer_paths": paths}, buffers

    def export(self) -> dict[str, Any]:
        """Every live model in the widget-state format, version 2.0 (buffers base64-encoded)."""
        return {
            "version_major": 2,
            "version_minor": 0,
            "state": {model.model_id: model.export() for model in self.models.values()},
        }
