"""One running kernel: its process, its state, its messages.

The API other parts of carme use (the websocket relay, extensions such as widgets):

- ``kernel.id``, ``kernel.name``, ``kernel.spec``, ``kernel.connection_info`` (ports, ip, key),
  ``kernel.execution_state`` (``starting|idle|busy|restarting|dead``), ``kernel.last_activity``,
  ``kernel.reason`` (why it died), ``kernel.model()`` (the /api/kernels JSON).
- ``kernel.connections``: the number of open client connections; the relay increments it when a
  websocket opens and decrements it when it closes (culling and /api/status read it).
- ``kernel.session``: the :class:`~carme.kernels.session.Session` that signs and verifies for
  this kernel (``session.serialize(msg, identities)`` to send, ``session.deserialize(channel,
  parts)`` to receive: None means dropped, bad signature).
- ``kernel.connect(channel, identity)``: a new connected ``zmq.asyncio`` socket for a client:
  DEALER with that identity for ``shell``/``control``/``stdin`` (replies are routed back to it),
  SUB subscribed to everything for ``iopub``. The caller closes it (``sock.close(linger=0)``);
  any left open are closed at shutdown. After a restart the ports stay the same, so these
  sockets keep working; if a restart had to pick new ports, ``kernel.connection_info`` changes and
  the ``"restarted"`` lifecycle event tells clients to reconnect.
- ``kernel.subscribe(callback) -> unsubscribe``: ``callback(msg: KernelMessage)`` for every
  verified iopub message, read once by the server (no slow-joiner loss: the server's iopub
  socket is connected before the kernel is reported ready). Synthetic status messages
  (``restarting``/``dead``, ``msg.synthetic`` true) arrive the same way. Callbacks run on the
  event loop and must not block.
- ``kernel.on_flush(callback) -> remove``: ``callback()`` once the kernel has handed one or more
  iopub messages to its subscribers in one go (a batch its reader took, a synthetic status),
  before it returns to the event loop: a subscriber may hold per-message work until then (the
  relay writes the websocket frames of a batch in one system call).
- ``kernel.subscribe_inbound(callback) -> unsubscribe``: ``callback(msg: KernelMessage)`` for every
  message a websocket client sends to the kernel (shell, control, stdin), after the relay
  forwarded it (widgets sees frontend-side widget updates this way). Costs the relay nothing
  while nobody subscribes.
- ``kernel.send_to_client(session, msg)``: a server-made message to one websocket client only
  (by its session id), e.g. an answer in the kernel's place.
- ``kernel.on_lifecycle(callback) -> unsubscribe``: ``callback(event)`` with ``"restarting"``,
  ``"restarted"``, ``"dead"`` (gave up restarting) or ``"shutdown"``.
- ``await kernel.wait_ready()``: returns once the kernel answers kernel_info (after a start or
  restart); raises :class:`KernelDeadError` if it is dead.
- ``kernel.transport``: the provisioner's :class:`~carme.kernels.transport.KernelTransport` when
  its messages travel through one (a gateway's websocket) rather than ZMQ sockets; None for a local
  kernel. The relay sends its clients' requests through it.
- ``interrupt()``, ``restart()``, ``shutdown()``: use the KernelManager's methods from routes
  (they also emit events); these are the per-kernel mechanics.

A monitor task polls the process and pings the heartbeat; a kernel that dies or stops answering
is restarted automatically (at most ``restart_limit`` times in a row) and its clients see iopub
status ``restarting`` (then ``dead`` if it gives up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from ..jsonutil import isoformat
from ..listeners import Listeners
from ..tasks import cancel_and_wait
from .channels import Channels, ServerChannels
from .connection import ConnectionInfo, open_socket
from .message import UNTRACKED_MESSAGE_TYPES, KernelMessage
from .provisioner import KernelLaunchError, Provisioner
from .session import Session, new_key
from .specs import KernelSpec
from .transport import KernelTransport, TransportChannels

log = logging.getLogger("carme.kernels.kernel")

UNTRACKED = frozenset(UNTRACKED_MESSAGE_TYPES)
START_ATTEMPTS = 3  # launches with fresh ports when a kernel dies at start (a port was taken)

MessageCallback = Callable[[KernelMessage], None]
LifecycleCallback = Callable[[str], None]


class KernelDeadError(RuntimeError):
    """The kernel is dead (shut down, or it died and could not be restarted)."""


class KernelStartError(RuntimeError):
    """The kernel could not be launched, exited at start, or did not answer kernel_info in time.

    ``status`` and ``reason``: what a client is answered (from :class:`KernelLaunchError`)."""

    def __init__(self, message: str, status: int = 500, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class KernelInfoTimeoutError(KernelStartError):
    """The kernel was launched but did not answer kernel_info in time."""


@dataclass
class KernelOptions:
    """Timing and retry settings of kernels, from the kernel settings (their defaults are declared
    with the settings, in carme.builtins.kernels)."""

    kernel_info_timeout: float
    shutdown_wait_time: float
    restart_limit: int
    poll_interval: float
    heartbeat_timeout: float
    stable_start_time: float = 10.0  # not a setting: a kernel alive this long has started well


class Kernel:
    """A kernel process and the server's view of it. Made by the KernelManager."""

    def __init__(self, kernel_id: str, spec: KernelSpec, provisioner: Provisioner, context: zmq.asyncio.Context,
                 options: KernelOptions, cwd: Path, env: dict[str, str],
                 on_dead: Callable[[Kernel], Awaitable[None]] | None = None) -> None:
        self.id = kernel_id
        self.name = spec.name
        self.spec = spec
        self.provisioner = provisioner
        self.options = options
        self.cwd = cwd
        self.env = env
        self.session = Session(new_key(), username="carme")
        self.connection_info: ConnectionInfo = {}
        self.execution_state = "starting"
        self._active_at = time.time()  # last_activity, as a timestamp: cheap to set on every message
        self._parent: tuple[bytes, str | None] = (b"", None)  # the last parent header frame seen on iopub, and its msg_type
        self.connections = 0
        self.reason: str | None = None
        self.kernel_info: dict[str, Any] = {}
        self._context = context
        self._on_dead = on_dead
        self._channels: Channels | None = None
        self._subscribers: Listeners[[KernelMessage]] = Listeners(log, f"kernel {kernel_id}: a message subscriber")
        self._flushers: Listeners[[]] = Listeners(log, f"kernel {kernel_id}: a flush listener")
        self._inbound: Listeners[[KernelMessage]] = Listeners(log, f"kernel {kernel_id}: an inbound subscriber")
        self._lifecycle: Listeners[[str]] = Listeners(log, f"kernel {kernel_id}: a lifecycle listener")
        self._to_client: Listeners[[str, KernelMessage]] = Listeners(log, f"kernel {kernel_id}: a client answerer")
        self._client_sockets: weakref.WeakSet[zmq.asyncio.Socket] = weakref.WeakSet()
        self._lock = asyncio.Lock()  # one of start / restart / auto-restart / shutdown at a time
        self._ready = asyncio.Event()
        self._iopub_seen = asyncio.Event()
        self._monitor: asyncio.Task[None] | None = None
        self._closed = False
        self._started_at = 0.0
        self._failures = 0

    # -- public state -----------------------------------------------------------------------

    @property
    def last_activity(self) -> datetime:
        """When the kernel last did work or was asked to (UTC)."""
        return datetime.fromtimestamp(self._active_at, UTC)

    @last_activity.setter
    def last_activity(self, when: datetime) -> None:
        self._active_at = when.timestamp()

    @property
    def closed(self) -> bool:
        """True once shut down or dead for good."""
        return self._closed

    def model(self) -> dict[str, Any]:
        """The kernel as /api/kernels shows it."""
        model = {"id": self.id, "name": self.name, "last_activity": isoformat(self.last_activity),
                 "execution_state": self.execution_state, "connections": self.connections}
        if self.reason:
            model["reason"] = self.reason
        return model

    def subscribe(self, callback: MessageCallback) -> Callable[[], None]:
        """Call ``callback(msg)`` for every iopub message; returns the unsubscribe function."""
        return self._subscribers.add(callback)

    def on_flush(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after each run of iopub messages delivered to subscribers in one go
        (see the module docstring); returns the remover."""
        return self._flushers.add(callback)

    def subscribe_inbound(self, callback: MessageCallback) -> Callable[[], None]:
        """Call ``callback(msg)`` for every message a client sends; returns the unsubscribe function."""
        return self._inbound.add(callback)

    def send_to_client(self, session: str, msg: KernelMessage) -> None:
        """Deliver ``msg`` (made by the server, e.g. with ``kernel.session.msg``) to the websocket
        client whose session id is ``session`` only, as if the kernel had sent it; nothing
        happens when no such client is connected or away. Widgets answers ``request_states``
        from its copy this way while the kernel is busy."""
        self._to_client.notify(session, msg)

    def on_send_to_client(self, callback: Callable[[str, KernelMessage], None]) -> Callable[[], None]:
        """``callback(session, msg)`` for :meth:`send_to_client` (the relay's clients register)."""
        return self._to_client.add(callback)

    def client_message(self, channel: str, parts: list[bytes]) -> None:
        """The relay forwarded ``parts`` from a client on ``channel``: tell inbound subscribers."""
        if not self._inbound:
            return
        try:
            msg = KernelMessage(channel, parts)
        except ValueError:
            return
        self._inbound.notify(msg)

    def on_lifecycle(self, callback: LifecycleCallback) -> Callable[[], None]:
        """Call ``callback(event)`` on restarting / restarted / dead / shutdown; returns a remover."""
        return self._lifecycle.add(callback)

    def connect(self, channel: str, identity: bytes | None = None) -> zmq.asyncio.Socket:
        """A new client socket on ``channel`` (see the module docstring); the caller closes it."""
        if self._closed:
            raise KernelDeadError(f"kernel {self.id} is {self.execution_state}")
        sock = open_socket(self._context, self.connection_info, channel, identity)
        self._client_sockets.add(sock)
        return sock

    async def wait_ready(self) -> None:
        """Wait until the kernel answers kernel_info (now, or after the restart in progress)."""
        while not self._ready.is_set():
            if self._closed:
                raise KernelDeadError(f"kernel {self.id} is dead: {self.reason or 'shut down'}")
            waiter = asyncio.ensure_future(self._ready.wait())
            try:
                await asyncio.wait_for(asyncio.shield(waiter), 0.5)
            except TimeoutError:
                pass
            finally:
                waiter.cancel()
        if self._closed:
            raise KernelDeadError(f"kernel {self.id} is dead: {self.reason or 'shut down'}")

    @property
    def pid(self) -> int | None:
        return self.provisioner.pid

    @property
    def transport(self) -> KernelTransport | None:
        """The provisioner's transport the kernel's messages travel through, or None: ZMQ sockets
        at :attr:`connection_info` (see :mod:`carme.kernels.transport`)."""
        channels = self._channels
        return channels.transport if isinstance(channels, TransportChannels) else None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Launch the kernel and wait for its kernel_info_reply; start watching it."""
        async with self._lock:
            try:
                await self._launch(None)
            except BaseException as exc:
                self.reason = str(exc) if isinstance(exc, Exception) else "start cancelled"
                # Shielded: in its own task the cleanup runs to its end (a remote kernel shut down
                # there) even when this start was cancelled (a DELETE while it started), which
                # would otherwise cut short every await of the cleanup.
                await asyncio.shield(self._close(self.reason))
                raise
        self._monitor = asyncio.ensure_future(self._watch())

    async def interrupt(self) -> None:
        """Interrupt the running code: SIGINT to the process group, or interrupt_request."""
        if self._closed:
            raise KernelDeadError(f"kernel {self.id} is dead")
        if self.spec.interrupt_mode == "message":
            assert self._channels is not None
            await self._channels.request(self.session.msg("control", "interrupt_request"),
                                         self.options.kernel_info_timeout)
        else:
            await self.provisioner.send_signal(signal.SIGINT)

    async def restart(self) -> None:
        """Restart in place: same id, same ports and key; returns once kernel_info answers."""
        if self._closed:
            raise KernelDeadError(f"kernel {self.id} is dead")
        async with self._lock:
            if self._closed:  # its start (or a shutdown) held the lock, and it did not survive it
                raise KernelDeadError(f"kernel {self.id} is dead: {self.reason or 'shut down'}")
            self._ready.clear()
            self.execution_state = "restarting"
            try:
                await self._stop_process(restart=True)
                await self.provisioner.cleanup(restart=True)
                await self._launch(self.connection_info)
            except Exception as exc:
                self.reason = f"restart failed: {exc}"
                await self._close(self.reason)
                self._emit_lifecycle("dead")
                raise
            self._failures = 0
        self._emit_lifecycle("restarted")

    async def shutdown(self) -> None:
        """Ask the kernel to stop on control; SIGTERM, then SIGKILL if it does not; clean up."""
        if self._closed:
            return
        monitor, self._monitor = self._monitor, None
        if monitor is not None and monitor is not asyncio.current_task():
            await cancel_and_wait(monitor, f"kernel {self.id}: the monitor", log)
        async with self._lock:
            if self._closed:
                return
            try:
                await self._stop_process(restart=False)
            except Exception:
                log.exception("kernel %s: stopping its process failed; cleaning up anyway", self.id)
            await self._close(None)
        self._emit_lifecycle("shutdown")

    # -- internals --------------------------------------------------------------------------

    async def _launch(self, reuse: ConnectionInfo | None) -> None:
        """Launch (retrying on fresh ports if it dies at once) and wait for kernel_info."""
        error: Exception | None = None
        for _attempt in range(START_ATTEMPTS):
            try:
                info = await self.provisioner.launch(self.id, self.spec, self.cwd, self.env, self.session.key, reuse)
            except KernelLaunchError as exc:
                raise KernelStartError(str(exc), exc.status, exc.reason) from None
            except Exception as exc:  # a third-party provisioner failed: same outcome for callers
                raise KernelStartError(f"the provisioner failed: {type(exc).__name__}: {exc}") from exc
            transport: KernelTransport | None = getattr(self.provisioner, "transport", None)
            if self._channels is None or self._channels.info != info or self.transport is not transport:
                if self._channels is not None:
                    await self._channels.close()
                self._channels = (ServerChannels(self._context, info, self.session, self._on_iopub, self._flush)
                                  if transport is None else
                                  TransportChannels(transport, info, self._on_iopub, self._to_client.notify,
                                                    self._flush))
            self.connection_info = info
            try:
                await self._wait_for_kernel_info()
            except KernelStartError as exc:
                error = exc
                await self.provisioner.cleanup(restart=True)
                if isinstance(exc, KernelInfoTimeoutError):
                    break  # a slow or stuck kernel: new ports would not help
                reuse = None  # it died at once: most likely a port was taken; pick fresh ones
                continue
            self._started_at = asyncio.get_running_loop().time()
            if self.execution_state in ("starting", "restarting"):
                self.execution_state = "idle"
            self._ready.set()
            return
        raise error or KernelStartError("kernel failed to start")

    async def _wait_for_kernel_info(self) -> None:
        """Until the kernel answers kernel_info on shell and the server's iopub socket hears it.

        The request is repeated every second (a message sent just before a restart can be
        lost); a reply to any of them counts.
        """
        assert self._channels is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.kernel_info_timeout
        self._iopub_seen.clear()
        answer: asyncio.Future[KernelMessage] = loop.create_future()
        forget: list[Callable[[], None]] = []
        try:
            while True:
                code = await self.provisioner.poll()
                if code is not None:
                    raise KernelStartError(f"kernel process exited with code {code} during start")
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise KernelInfoTimeoutError(
                        f"kernel did not answer kernel_info within {self.options.kernel_info_timeout} s")
                request = self.session.msg("shell", "kernel_info_request")
                if not answer.done():
                    forget.append(self._channels.expect_reply(request.msg_id, answer))
                self._channels.send(request)
                # kernel_info also makes the kernel publish status on iopub: proof our SUB is live.
                if not answer.done():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(answer), min(1.0, remaining))
                    if answer.done():
                        self.kernel_info = answer.result().content
                if answer.done():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._iopub_seen.wait(), min(0.5, max(remaining, 0.01)))
                    if self._iopub_seen.is_set():
                        return
        finally:
            for remove in forget:
                remove()
            answer.cancel()

    async def _stop_process(self, restart: bool) -> None:
        """Polite shutdown_request on control, then SIGTERM at half time, then SIGKILL (the
        caller cleans up after)."""
        wait = self.options.shutdown_wait_time
        if await self.provisioner.poll() is None:
            if self._channels is not None:
                with contextlib.suppress(zmq.ZMQError):
                    self._channels.send(self.session.msg("control", "shutdown_request", {"restart": restart}))
            if await self.provisioner.wait(wait / 2) is None:
                await self.provisioner.send_signal(signal.SIGTERM)
                if await self.provisioner.wait(wait / 2) is None:
                    await self.provisioner.kill()

    async def _close(self, reason: str | None) -> None:
        """Release everything: process, connection file, sockets; state dead."""
        self._closed = True
        self._ready.clear()
        self.execution_state = "dead"
        if reason:
            self.reason = reason
        try:
            await self.provisioner.cleanup(restart=False)
        except Exception:
            log.exception("kernel %s: the provisioner's cleanup failed; its process, ports or connection file "
                          "may be left behind", self.id)
        if self._channels is not None:
            await self._channels.close()
            self._channels = None
        for sock in list(self._client_sockets):
            if not sock.closed:
                sock.close(linger=0)

    def _on_iopub(self, msg: KernelMessage) -> None:
        self._iopub_seen.set()
        msg_type = msg.msg_type
        state = msg.content.get("execution_state") if msg_type == "status" else None
        if state == "starting" or msg_type == "iopub_welcome":
            # News of the kernel's own start (or of a new subscriber), not work: ipykernel can publish
            # its parentless "starting" status late, after later messages of a running cell. Taken as
            # activity it would keep the culler from an idle kernel; as the state, hide a busy one.
            self._deliver(msg)
            return
        parent_type = self._parent_type(msg) if msg_type in UNTRACKED else None
        if msg_type not in UNTRACKED or parent_type not in UNTRACKED:
            self._active_at = time.time()
        # Until the kernel is ready the (re)start owns the state ("starting", "restarting").
        if isinstance(state, str) and parent_type not in UNTRACKED and self._ready.is_set():
            self.execution_state = state
        self._deliver(msg)

    def _parent_type(self, msg: KernelMessage) -> str | None:
        """The msg_type of ``msg``'s parent; the header of the last parent is kept parsed (the
        output of one request all has the same parent frame)."""
        frame = msg.frames[1]
        seen, parent_type = self._parent
        if frame != seen:
            parent_type = msg.parent_msg_type
            self._parent = (frame, parent_type)
        return parent_type

    def _deliver(self, msg: KernelMessage) -> None:
        self._subscribers.notify(msg)

    def _flush(self) -> None:
        if self._flushers:
            self._flushers.notify()

    def synthetic_status(self, state: str) -> KernelMessage:
        """An iopub status of ``state`` made by carme for the kernel (starting, restarting, dead),
        as jupyter_server sends them."""
        return self.session.msg("iopub", "status", {"execution_state": state}, synthetic=True)

    def _emit_status(self, state: str) -> None:
        """A synthetic iopub status (restarting/dead) for subscribers."""
        self.execution_state = state
        self._deliver(self.synthetic_status(state))
        self._flush()

    def _emit_lifecycle(self, event: str) -> None:
        self._lifecycle.notify(event)

    # -- monitoring and auto-restart --------------------------------------------------------

    async def _watch(self) -> None:
        """Poll the process and ping the heartbeat; restart a kernel that died or hangs."""
        interval = self.options.poll_interval
        loop = asyncio.get_running_loop()
        answered = loop.time()  # when the heartbeat last answered
        while not self._closed:
            await asyncio.sleep(interval)
            if self._lock.locked() or self._channels is None:
                answered = loop.time()
                continue  # a restart or shutdown is in progress
            code = await self.provisioner.poll()
            if code is not None:
                reason = f"kernel process exited with code {code}"
            elif self.options.heartbeat_timeout > 0:
                if await self._channels.ping(max(interval, 1.0)):
                    answered = loop.time()
                    continue
                if loop.time() - answered < self.options.heartbeat_timeout or self._lock.locked():
                    continue
                reason = f"kernel did not answer its heartbeat for {self.options.heartbeat_timeout} s"
            else:
                continue
            if not await self._auto_restart(reason):
                return
            answered = loop.time()

    async def _auto_restart(self, reason: str) -> bool:
        """Relaunch after a death; False when it gave up (the kernel is now dead)."""
        async with self._lock:
            if self._closed:
                return False
            log.warning("kernel %s: %s; restarting", self.id, reason)
            self._ready.clear()
            self._emit_status("restarting")
            self._emit_lifecycle("restarting")
            if asyncio.get_running_loop().time() - self._started_at >= self.options.stable_start_time:
                self._failures = 0  # it ran long enough: this is a new series of failures
            while True:
                self._failures += 1
                if self._failures > self.options.restart_limit:
                    break
                try:
                    await self.provisioner.kill()
                    await self.provisioner.cleanup(restart=True)
                    await self._launch(self.connection_info)
                except Exception as exc:  # any failure counts as a failed restart
                    reason = str(exc)
                    log.warning("kernel %s: restart %d failed: %s", self.id, self._failures, reason)
                    continue
                log.info("kernel %s restarted", self.id)
                break
            if self._ready.is_set():
                restarted = True
            else:
                restarted = False
                log.error("kernel %s is dead after %d restarts: %s", self.id, self.options.restart_limit, reason)
                self._emit_status("dead")
                await self._close(reason)
        self._emit_lifecycle("restarted" if restarted else "dead")
        if not restarted and self._on_dead is not None:
            await self._on_dead(self)
        return restarted
