"""Which messages may cross a kernel websocket: one policy object, chosen per connection.

A full-access client (``/api/kernels/ID/channels`` for a user who may execute on kernels) has no
policy and pays nothing for this module. A restricted client (a dashboard visitor, or a user who
may read but not execute on kernels: :meth:`MessagePolicy.read_only`) is given a
:class:`MessagePolicy` by the endpoint that accepted its websocket; the relay asks it about every
message in both directions, live and replayed alike:

- client -> kernel: only the message types in ``client_types`` are forwarded; any other is
  dropped and logged (the kernel never sees it, so an ``execute_request`` cannot run code); when
  the policy has a ``refusal`` text, a refused request is answered to that client alone with an
  error reply (and an execute request with an error output), so a frontend shows why;
- kernel -> client: ``hidden_types`` are never delivered (``execute_input`` carries source),
  nor is anything answering a request of a ``private_sessions`` session (the server's own
  executor: its outputs, errors and tracebacks), except ``shared_types`` (widget comms and
  status, which carry state, not source).

The checks run on the already parsed header; the parent header is parsed only for messages that
could be private.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .message import COMM_TYPES

log = logging.getLogger("carme.kernels.policy")

# What a widget page needs to send: comms, their discovery, kernel_info, answers to input(), and
# subshells (JupyterLab sends each comm target's messages on a subshell of its own; a subshell
# runs no code that is not sent to it, and no execute_request is let through).
DASHBOARD_CLIENT_TYPES = COMM_TYPES | {"comm_info_request", "kernel_info_request", "input_reply",
                                       "create_subshell_request", "delete_subshell_request", "list_subshell_request"}
# What a user who may only watch a kernel sends: no execute, inspect, complete or stdin.
READ_ONLY_CLIENT_TYPES = frozenset({"comm_info_request", "kernel_info_request"})
UNANSWERED = frozenset({"debug_request"})  # refused without an error reply (see answers_to_refused)


@dataclass(frozen=True)
class MessagePolicy:
    """The message types a restricted websocket client may send and receive."""

    name: str
    client_types: frozenset[str] = DASHBOARD_CLIENT_TYPES
    hidden_types: frozenset[str] = frozenset({"execute_input"})
    private_sessions: frozenset[str] = frozenset()
    shared_types: frozenset[str] = COMM_TYPES | {"status"}
    refusal: str | None = None  # answered to a refused request; None: dropped silently
    # Stream names never delivered ("stderr": warnings and logs quote source lines).
    hidden_streams: frozenset[str] = frozenset()
    # When set, kernel_info_request is answered with this (what the kernel said at start) instead of
    # waiting behind a running cell: a page can then connect, and open its widget subshells, while
    # the server's own executor keeps the kernel's main shell busy.
    kernel_info: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    # Told the type of a refused message (as often as it is logged), to publish it for audit.
    on_refused: Callable[[str], None] | None = field(default=None, compare=False, repr=False)
    _refused: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def restricted(cls, name: str, *, private_sessions: Iterable[str] = (), hide: Iterable[str] = (),
                   client_types: Iterable[str] = DASHBOARD_CLIENT_TYPES,
                   kernel_info: dict[str, Any] | None = None, hide_streams: Iterable[str] = ()) -> MessagePolicy:
        """A policy for a page that only talks to widgets: ``hide`` adds to ``execute_input``,
        ``hide_streams`` names streams (``stderr``) that never reach the page."""
        return cls(name, frozenset(client_types), frozenset({"execute_input", *hide}), frozenset(private_sessions),
                   kernel_info=kernel_info, hidden_streams=frozenset(hide_streams))

    def answers_locally(self, channel: str, request: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        """What the server answers itself instead of forwarding ``request``, as (channel, msg_type,
        content): a kernel_info_request from ``kernel_info`` (with busy and idle, as a kernel does)."""
        if self.kernel_info is None or request.get("msg_type") != "kernel_info_request":
            return []
        return [("iopub", "status", {"execution_state": "busy"}), (channel, "kernel_info_reply", self.kernel_info),
                ("iopub", "status", {"execution_state": "idle"})]

    @classmethod
    def read_only(cls, name: str, *, comms: bool = False,
                  on_refused: Callable[[str], None] | None = None) -> MessagePolicy:
        """A user who may watch a kernel but not run code on it: outputs and status arrive as for
        anyone, requests other than kernel_info and comm_info are refused with an error reply;
        ``comms`` lets widget messages through (widget callbacks do run in the kernel)."""
        return cls(name, READ_ONLY_CLIENT_TYPES | (COMM_TYPES if comms else frozenset()), frozenset(),
                   refusal=f"{name}: you may watch this kernel but not run code on it", on_refused=on_refused)

    def allows_from_client(self, header: dict[str, Any]) -> bool:
        """Whether a client message with this header may reach the kernel (refusals are logged)."""
        msg_type = header.get("msg_type")
        if isinstance(msg_type, str) and msg_type in self.client_types:
            return True
        key = str(msg_type)[:60]
        self._refused[key] = self._refused.get(key, 0) + 1
        if self._refused[key] == 1 or self._refused[key] % 100 == 0:  # a looping client must not flood the log
            log.warning('%s: refused a client message of type "%s" (%d so far); allowed: %s', self.name, key,
                        self._refused[key], ", ".join(sorted(self.client_types)))
            if self.on_refused is not None:
                self.on_refused(key)
        return False

    def answers_to_refused(self, channel: str, request: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        """What a kernel would send a client whose request failed, as (channel, msg_type, content):
        busy, an error output for an execute request (what a notebook shows under the cell), the
        error reply, idle. Nothing without a ``refusal`` text, for what is not a request (a refused
        input_reply or comm message), or for a debug request (its reply is a Debug Adapter Protocol
        response whose body JupyterLab's debugger reads: unanswered, the debugger stays off)."""
        msg_type = str(request.get("msg_type", ""))
        if (self.refusal is None or channel not in ("shell", "control") or not msg_type.endswith("_request")
                or msg_type in UNANSWERED):
            return []
        text = self.refusal
        error = {"ename": "PermissionError", "evalue": text, "traceback": [f"\x1b[0;31mPermissionError\x1b[0m: {text}"]}
        reply: dict[str, Any] = {"status": "error", **error}
        answers: list[tuple[str, str, dict[str, Any]]] = [("iopub", "status", {"execution_state": "busy"})]
        if msg_type == "execute_request":
            answers.append(("iopub", "error", error))
            reply["execution_count"] = None
        answers += [(channel, msg_type[:-len("request")] + "reply", reply),
                    ("iopub", "status", {"execution_state": "idle"})]
        return answers

    def allows_to_client(self, header: dict[str, Any], parent_header: bytes, content: bytes = b"") -> bool:
        """Whether a kernel message may be delivered (``parent_header`` and ``content`` as their
        raw JSON frames; the content is parsed only for a stream when streams are hidden)."""
        msg_type = header.get("msg_type")
        if msg_type in self.hidden_types:
            return False
        if msg_type == "stream" and self.hidden_streams and content_field(content, "name") in self.hidden_streams:
            return False
        if not self.private_sessions or msg_type in self.shared_types or not parent_header:
            return True
        try:
            parent = orjson.loads(parent_header)
        except orjson.JSONDecodeError:
            return False
        return not (isinstance(parent, dict) and parent.get("session") in self.private_sessions)


def content_field(content: bytes, key: str) -> Any:
    """One top-level field of a message's raw JSON content (None when absent or malformed)."""
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    return value.get(key) if isinstance(value, dict) else None
