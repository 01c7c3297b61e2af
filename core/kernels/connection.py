"""Connection info: ports, the connection file, and ZMQ sockets to a kernel's channels.

The kernel binds its five sockets, so the server can only pick ports for it. Ports are chosen by
binding real sockets to port 0 and holding them open while the connection file is written, so
no other kernel of this server can be handed the same port; :class:`PortPool` also remembers the
ports of live kernels. The sockets are released just before the kernel is spawned; if another
process grabs a port in that gap the kernel dies at start and is relaunched on fresh ports.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar, overload

import orjson
import zmq
import zmq.asyncio

from .message import CHANNELS, REQUEST_CHANNELS
from .session import SIGNATURE_SCHEME

PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
CHANNEL_PORTS = {name: f"{name}_port" for name in (*CHANNELS, "hb")}

ConnectionInfo = dict[str, Any]
# ZMQ retries a refused connect after its reconnect interval plus up to as much again at random:
# 100-200 ms by default. A kernel binds its ports some 100-200 ms after it is launched (and again
# after a restart), so the server would hear it up to 200 ms late; a refused connect to a local
# port costs next to nothing, so it retries every 10-20 ms instead.
RECONNECT_MS = 10
S = TypeVar("S", bound="zmq.Socket[Any]")


class PortPool:
    """Hands out kernel ports on one IP; a port stays reserved until released."""

    def __init__(self, ip: str = "127.0.0.1") -> None:
        self.ip = ip
        self.reserved: set[int] = set()

    @contextlib.contextmanager
    def holding(self, count: int = len(PORT_NAMES)) -> Iterator[list[int]]:
        """Yield ``count`` free ports, bound (held) for the duration of the ``with`` block."""
        held: list[socket.socket] = []
        ports: list[int] = []
        try:
            while len(ports) < count:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind((self.ip, 0))
                held.append(sock)  # keep it bound either way, so the OS cannot hand it out again
                port = sock.getsockname()[1]
                if port not in self.reserved:
                    ports.append(port)
            self.reserved.update(ports)
            yield ports
        finally:
            for sock in held:
                sock.close()

    def release(self, info: ConnectionInfo) -> None:
        for name in PORT_NAMES:
            self.reserved.discard(info.get(name, -1))


def new_connection_info(ports: list[int], ip: str, key: bytes, kernel_name: str) -> ConnectionInfo:
    return {**dict(zip(PORT_NAMES, ports, strict=True)), "ip": ip, "key": key.decode("ascii"),
            "transport": "tcp", "signature_scheme": SIGNATURE_SCHEME, "kernel_name": kernel_name}


def write_connection_file(path: Path, info: ConnectionInfo) -> None:
    """Write the connection file readable by the owner only (0600): it holds the signing key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(orjson.dumps(info, option=orjson.OPT_INDENT_2))


def channel_url(info: ConnectionInfo, channel: str) -> str:
    port = info[CHANNEL_PORTS[channel]]
    transport = info.get("transport", "tcp")
    if transport in ("ipc", "inproc"):  # inproc: a provisioner in this process, on the kernels' context
        return f"{transport}://{info['ip']}-{port}"
    return f"tcp://{info['ip']}:{port}"


@overload
def open_socket(context: zmq.asyncio.Context, info: ConnectionInfo, channel: str, identity: bytes | None = None,
                *, socket_class: None = None, rcvhwm: int | None = None,
                connect: bool = True) -> zmq.asyncio.Socket: ...


@overload
def open_socket(context: zmq.asyncio.Context, info: ConnectionInfo, channel: str, identity: bytes | None = None,
                *, socket_class: type[S], rcvhwm: int | None = None, connect: bool = True) -> S: ...


def open_socket(context: zmq.asyncio.Context, info: ConnectionInfo, channel: str, identity: bytes | None = None,
                *, socket_class: type[zmq.Socket[Any]] | None = None, rcvhwm: int | None = None,
                connect: bool = True) -> Any:
    """A connected client socket: DEALER (shell/control/stdin), SUB to everything (iopub), REQ (hb).

    A ``zmq.asyncio`` socket unless ``socket_class`` asks for another (``zmq.Socket``: plain,
    for a reader that watches its file descriptor); ``rcvhwm`` replaces ZMQ's receive high-water
    mark (0: unlimited); ``connect=False`` leaves the connecting (to :func:`channel_url`) to the
    caller, who may watch the socket first. Made on ``context``, so destroying the context closes it.
    """
    if channel == "iopub":
        sock = context.socket(zmq.SUB, socket_class=socket_class)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
    elif channel == "hb":
        sock = context.socket(zmq.REQ, socket_class=socket_class)
    elif channel in REQUEST_CHANNELS:
        sock = context.socket(zmq.DEALER, socket_class=socket_class)
        if identity:
            sock.setsockopt(zmq.IDENTITY, identity)
    else:
        raise ValueError(f"unknown kernel channel {channel!r}")
    if rcvhwm is not None:
        sock.setsockopt(zmq.RCVHWM, rcvhwm)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
    if connect:
        sock.connect(channel_url(info, channel))
    return sock
