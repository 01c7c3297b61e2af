"""The bridge: a remote kernel's channels websocket on the gateway, as carme's kernel transport, so
that a carme Kernel (its relay, replay, widgets, sessions, culling) drives a remote kernel exactly
as it drives a local one.

The bridge is the kernel's :class:`~carme.kernels.transport.KernelTransport`: carme's server and
its websocket clients hand it their messages (``send``: channel, identity, raw parts), and it
delivers the gateway's to carme (``attach``'s callback): iopub as it comes, a reply with the
identity of the request it answers (by the parent msg_id), so replies reach the asking client only.
Neither way is anything signed or checked: nothing passes through a socket another process could
reach, and on the gateway's websocket (v1 protocol) messages carry no signature at all: the
gateway signs what it sends its kernel with its own key.

For the extensions' own sockets (``kernel.connect``) the bridge also binds what a kernel binds
(``inproc``, on carme's kernel context): ROUTERs for shell, control and stdin, an XPUB for iopub
(published to, signed, only while someone subscribes) and a REP for the heartbeat. Messages from
those sockets are verified with the kernel's key and go out on the same websocket; their replies
are signed and routed back to the ROUTER identity that asked.

The websocket is reconnected with the same session id when it drops (the gateway replays what it
buffered), up to ``retry_max`` times with a doubling wait; requests sent meanwhile wait in a bounded
outbox. A kernel the gateway no longer knows (404: culled, or the gateway restarted), or a gateway
gone for good, makes the bridge ``lost``: the provisioner then reports the process as exited and
carme reports the kernel dead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from collections import OrderedDict, deque
from typing import Any
from urllib.parse import quote

import orjson
import zmq
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from carme.kernels.connection import ConnectionInfo, new_connection_info
from carme.kernels.frames import V1_SUBPROTOCOL, FrameError, decode_legacy, decode_v1, encode_v1
from carme.kernels.session import DELIMITER, Session
from carme.kernels.transport import Deliver
from carme.kernels.zmqio import SocketGroup
from carme.tasks import cancel_and_wait

from .client import GatewayClient, GatewayError

log = logging.getLogger("carme.gateway.bridge")

REQUEST_CHANNELS = ("shell", "control", "stdin")
BATCH = 64  # messages read from one socket before looking at the others
PENDING_MAX = 4096  # request msg_ids remembered for routing replies (oldest forgotten first)
OUTBOX_MAX = 10_000  # requests kept while the websocket reconnects (oldest dropped first)
PING_INTERVAL = 20.0  # websocket pings: a half-open connection to the gateway is noticed
CHECK_TIMEOUT = 10.0  # the periodic "does the gateway still know this kernel" request


class Bridge:
    """One remote kernel's channels, bridged to local ZMQ sockets (see the module docstring)."""

    def __init__(self, client: GatewayClient, context: zmq.Context[Any], kernel_id: str, key: bytes,
                 kernel_name: str) -> None:
        self.client = client
        self.config = client.config
        self.kernel_id = kernel_id  # the gateway's id of the kernel
        self.session = Session(key)
        self.session_id = uuid.uuid4().hex  # ours on the gateway's websocket, kept across reconnects
        self.lost: GatewayError | None = None  # why the kernel is gone, once it is
        self._ws: ClientConnection | None = None
        self._outbox: deque[bytes] = deque()
        # request msg_id -> who asked: (identity, True) through the transport, (ROUTER identity, False)
        self._pending: OrderedDict[str, tuple[bytes | None, bool]] = OrderedDict()
        self._deliver: Deliver | None = None  # carme's, while attached
        self._topics: set[bytes] = set()  # what the iopub XPUB's subscribers subscribed to
        self._connected = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._closer: asyncio.Future[None] | None = None  # closing the websocket of a lost kernel
        self._sockets: dict[str, zmq.Socket[Any]] = {}
        self._group: SocketGroup | None = None  # the sockets carme's requests arrive on, while relaying
        # inproc sockets on carme's kernel context: the bridge lives in carme's process, so the hot
        # path skips ZMQ's I/O threads and the kernel; no other process can connect at all.
        base = f"carme-gateway-{uuid.uuid4().hex}"
        kinds = {"shell": zmq.ROUTER, "iopub": zmq.XPUB, "stdin": zmq.ROUTER, "control": zmq.ROUTER, "hb": zmq.REP}
        for port, (name, kind) in enumerate(kinds.items(), start=1):  # the order of connection.PORT_NAMES
            sock = context.socket(kind, socket_class=zmq.Socket)
            sock.setsockopt(zmq.LINGER, 0)
            if kind == zmq.XPUB:
                sock.setsockopt(zmq.SNDHWM, 0)  # never drop output: the gateway's pace bounds it
            sock.bind(f"inproc://{base}-{port}")
            self._sockets[name] = sock
        self.info: ConnectionInfo = {**new_connection_info(list(range(1, 6)), base, key, kernel_name),
                                     "transport": "inproc"}

    @property
    def label(self) -> str:
        return f"gateway kernel {self.kernel_id}"

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start relaying; returns once the websocket is open (:class:`GatewayError` if it cannot be)."""
        self._tasks = [asyncio.create_task(self._zmq_loop(), name=f"{self.label}: zmq"),
                       asyncio.create_task(self._ws_loop(), name=f"{self.label}: websocket"),
                       asyncio.create_task(self._check_loop(), name=f"{self.label}: check")]
        await self.wait_connected()

    async def wait_connected(self) -> None:
        """Until the websocket is open; :class:`GatewayError` when the kernel is lost instead."""
        while not self._connected.is_set():
            if self.lost is not None:
                raise self.lost
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected.wait(), 0.2)
        if self.lost is not None:
            raise self.lost

    async def reconnect(self) -> None:
        """A fresh websocket (after a restart on the gateway, whose channels may have moved)."""
        ws, self._ws = self._ws, None
        self._connected.clear()
        if ws is not None:
            await ws.close()  # the websocket loop connects again at once
        await self.wait_connected()

    def mark_lost(self, error: GatewayError) -> None:
        """The kernel is gone (or out of reach for good): stop relaying, remember why."""
        if self.lost is None:
            log.warning("%s: %s", self.label, error.message)
            self.lost = error
        self._connected.set()  # wake waiters; they see ``lost``
        if self._ws is not None and self._closer is None:
            self._closer = asyncio.ensure_future(self._ws.close())

    async def close(self) -> None:
        """Stop every task, close the websocket and the sockets."""
        self._closing = True
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)
        for task in self._tasks:
            await cancel_and_wait(task, f"{self.label}: a bridge task", log)
        for sock in self._sockets.values():
            sock.close(linger=0)

    # -- the transport ----------------------------------------------------------------------

    def attach(self, deliver: Deliver) -> None:
        """carme's kernel takes the gateway's messages from now on (see the module docstring)."""
        self._deliver = deliver

    def detach(self) -> None:
        self._deliver = None

    async def send(self, channel: str, identity: bytes | None, parts: list[bytes]) -> None:
        """One message from carme (its server: ``identity`` None, or a websocket client) to the kernel."""
        if len(parts) < 4:
            log.warning("%s: dropped a %s message with too few parts", self.label, channel)
            return
        await self._forward(channel, (identity, True), parts)

    # -- carme -> gateway --------------------------------------------------------------------

    async def _zmq_loop(self) -> None:
        group = self._group = SocketGroup(asyncio.get_running_loop())
        channels = [(name, self._sockets[name]) for name in (*REQUEST_CHANNELS, "hb", "iopub")]
        for _name, sock in channels:
            group.add(sock)
        try:
            while True:
                await group.wait()
                for name, sock in channels:
                    if sock in group.ready:
                        for _ in range(BATCH):
                            frames = group.recv(sock)
                            if frames is None:
                                break
                            if name == "hb":
                                sock.send_multipart(frames)  # echo: the bridge is alive
                                group.sent(sock)
                            elif name == "iopub":
                                self._subscription(frames[0])
                            else:
                                await self._from_carme(name, frames)
                if group.ready:
                    await asyncio.sleep(0)  # more queued: let the rest of carme run first
        finally:
            self._group = None
            group.remove_all()

    async def _from_carme(self, channel: str, frames: list[bytes]) -> None:
        try:
            split = frames.index(DELIMITER)
        except ValueError:
            log.warning("%s: dropped a %s message without delimiter", self.label, channel)
            return
        parts = frames[split + 2:]
        if split < 1 or len(parts) < 4 or not self.session.verify(frames[split + 1], parts):
            log.warning("%s: dropped a %s message with a bad signature or too few parts", self.label, channel)
            return
        await self._forward(channel, (frames[0], False), parts)

    def _subscription(self, frame: bytes) -> None:
        """A subscribe (1) or unsubscribe (0) from the iopub XPUB: the first subscriber of a topic
        and the last one leaving it (a closed socket leaves all of its)."""
        if frame[:1] == b"\x01":
            self._topics.add(frame[1:])
        elif frame[:1] == b"\x00":
            self._topics.discard(frame[1:])

    async def _forward(self, channel: str, origin: tuple[bytes | None, bool], parts: list[bytes]) -> None:
        """``parts`` of a request to the kernel, from ``origin`` (who to route the replies to)."""
        try:
            header = orjson.loads(parts[0])
        except orjson.JSONDecodeError:
            return
        if not isinstance(header, dict):
            return
        if channel == "control" and header.get("msg_type") == "shutdown_request":
            # carme stops or restarts the kernel this way; on the gateway that is the REST API's
            # job (a kernel that exits by itself is restarted there): the provisioner does it.
            return
        msg_id = header.get("msg_id")
        if isinstance(msg_id, str):
            self._pending[msg_id] = origin
            if len(self._pending) > PENDING_MAX:
                self._pending.popitem(last=False)
        await self._send(encode_v1(channel.encode("ascii"), parts))

    async def _send(self, frame: bytes) -> None:
        ws = self._ws
        if ws is None or self._outbox:
            if self.lost is None:
                self._outbox.append(frame)
                if len(self._outbox) > OUTBOX_MAX:
                    self._outbox.popleft()
                    log.warning("%s: the gateway is away; dropped the oldest waiting request", self.label)
            return
        try:
            await ws.send(frame)
        except ConnectionClosed:
            self._outbox.append(frame)  # sent again once reconnected

    # -- gateway -> carme --------------------------------------------------------------------

    def _from_gateway(self, frame: bytes | str) -> None:
        try:
            if isinstance(frame, bytes):
                channel: str | None
                channel, parts = decode_v1(frame)
            else:
                channel, parts = decode_legacy(frame)
        except FrameError as exc:
            log.warning("%s: dropped a frame from the gateway: %s", self.label, exc)
            return
        if len(parts) < 4:
            return
        deliver = self._deliver
        if channel == "iopub":
            if deliver is not None:
                deliver(channel, None, parts)
            if self._topics:  # an extension's own iopub socket (kernel.connect): it checks signatures
                self._publish(self._sockets["iopub"], [DELIMITER, self.session.sign(parts), *parts])
            return
        if channel not in REQUEST_CHANNELS:
            return
        try:
            parent = orjson.loads(parts[1]) if parts[1] else {}
        except orjson.JSONDecodeError:
            parent = {}
        origin = self._pending.get(parent.get("msg_id", "")) if isinstance(parent, dict) else None
        if origin is None:
            log.debug("%s: a %s message answers no request of carme's; dropped", self.label, channel)
            return
        identity, direct = origin
        if direct:
            if deliver is not None:
                deliver(channel, identity, parts)
            return
        assert identity is not None  # a ROUTER's
        self._publish(self._sockets[channel], [identity, DELIMITER, self.session.sign(parts), *parts])

    def _publish(self, sock: zmq.Socket[Any], frames: list[bytes]) -> None:
        sock.send_multipart(frames, copy=len(frames[-1]) < 65536)
        if self._group is not None:
            self._group.sent(sock)  # the send may have taken the FD's signal of a message from carme

    # -- the websocket -----------------------------------------------------------------------

    def _ws_headers(self) -> dict[str, str]:
        headers = dict(self.config.headers)
        if self.config.basic_auth:
            user, password = self.config.basic_auth
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return headers

    async def _connect(self) -> ClientConnection:
        """Open the channels websocket; :class:`GatewayError` with the status the gateway answered
        (503 when it did not)."""
        config = self.config
        url = (f"{config.ws_url}{config.kernels_endpoint}/{quote(self.kernel_id, safe='')}/channels"
               f"?session_id={self.session_id}")
        ssl = config.ssl_context() if url.startswith("wss:") else None
        try:
            return await connect(url, subprotocols=[V1_SUBPROTOCOL], additional_headers=self._ws_headers(),  # type: ignore[list-item]
                                 ssl=ssl if ssl is not True else None, open_timeout=config.connect_timeout,
                                 ping_interval=PING_INTERVAL, ping_timeout=PING_INTERVAL, close_timeout=2.0,
                                 max_size=None, compression=None)
        except InvalidStatus as exc:
            status = exc.response.status_code
            words = exc.response.body.decode("utf-8", "replace")[:300] if exc.response.body else ""
            raise GatewayError(status, f"Jupyter Enterprise Gateway refused the channels of kernel {self.kernel_id} "
                               f"({status}){': ' + words if words else ''}", "Not Found" if status == 404 else None) from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise GatewayError(503, f"Jupyter Enterprise Gateway at {config.ws_url} cannot be reached for the "
                               f"channels of kernel {self.kernel_id}: {exc or type(exc).__name__}",
                               "Service Unavailable") from None

    async def _ws_loop(self) -> None:
        failures = 0
        while not self._closing and self.lost is None:
            try:
                ws = await self._connect()
            except GatewayError as exc:
                failures += 1
                if exc.status < 500 or failures > self.config.retry_max:
                    gone = exc if exc.status < 500 else GatewayError(
                        503, f"{exc.message} (gave up after {failures} tries)", exc.reason)
                    if exc.status == 404:
                        gone = GatewayError(404, f"kernel {self.kernel_id} is gone from the gateway (culled, shut "
                                                 "down there, or the gateway restarted)", "Not Found")
                    self.mark_lost(gone)
                    return
                delay = min(self.config.retry_interval * 2 ** (failures - 1), self.config.retry_interval_max)
                log.warning("%s: %s; trying again in %.1f s", self.label, exc.message, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            try:
                while self._outbox:  # what waited while away, in order, before anything new
                    await ws.send(self._outbox[0])
                    self._outbox.popleft()
                self._ws = ws
                self._connected.set()
                async for frame in ws:
                    self._from_gateway(frame)
            except ConnectionClosed:
                pass
            if self._ws is ws:
                self._ws = None
                self._connected.clear()
                if not self._closing and self.lost is None:
                    log.warning("%s: the gateway closed the channels websocket (%s); reconnecting",
                                self.label, ws.close_code)

    async def _check_loop(self) -> None:
        """Every ``check_interval``: does the gateway still know the kernel? (Its culler does not
        tell the clients; an unreachable gateway is the websocket's business.)"""
        interval = self.config.check_interval
        if interval <= 0:
            return
        while self.lost is None:
            await asyncio.sleep(interval)
            try:
                model = await self.client.get_kernel(self.kernel_id, timeout=min(CHECK_TIMEOUT, self.config.request_timeout))
            except GatewayError:
                continue
            if model is None:
                self.mark_lost(GatewayError(404, f"kernel {self.kernel_id} is gone from the gateway (culled or "
                                                 "shut down there)", "Not Found"))
