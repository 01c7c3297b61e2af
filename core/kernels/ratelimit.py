"""IOPub rate limiting per websocket connection, as jupyter_server does it.

Only iopub is limited; ``status``, ``comm_open`` and ``execute_input`` are never counted or
dropped. Message and byte counts (bytes of ``stream`` messages only) are held over a sliding
window; when a rate goes over its limit the client gets one stderr ``stream`` notice (with the
offending message's parent header, so it shows in that cell) and messages are dropped until the
rate falls below 80% of the limit. A ``status: idle`` resets every count, so "Run All" does not
add up.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass

log = logging.getLogger("carme.kernels.ratelimit")

EXEMPT = frozenset(("status", "comm_open", "execute_input"))

NOTICE = """\
IOPub {what} rate exceeded.
The Jupyter server will temporarily stop sending output
to the client in order to avoid crashing it.
To change this limit, set the config variable
`--ServerApp.iopub_{key}_rate_limit`.

Current values:
ServerApp.iopub_{key}_rate_limit={limit} ({unit}/sec)
ServerApp.rate_limit_window={window} (secs)
"""


@dataclass(frozen=True)
class RateLimits:
    """The limits per second (0 turns one off) averaged over ``window`` seconds; the defaults
    are those of the settings (``iopub_msg_rate_limit``, ... in carme.builtins.kernels)."""

    msg_rate: float
    data_rate: float
    window: float

    @property
    def enabled(self) -> bool:
        return self.msg_rate > 0 or self.data_rate > 0


class IOPubRateLimiter:
    """Decides, message by message, whether an iopub message goes to the client."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._queue: deque[tuple[float, int]] = deque()
        self._count = 0
        self._bytes = 0
        self._msgs_exceeded = False
        self._data_exceeded = False

    def reset(self) -> None:
        self._queue.clear()
        self._count = self._bytes = 0
        self._msgs_exceeded = self._data_exceeded = False

    def check(self, msg_type: str, size: int, idle: bool = False) -> tuple[bool, str | None]:
        """(send it?, notice text to send first or None).

        ``size`` is the message's total length in bytes; ``idle`` is True for ``status: idle``.
        """
        if idle:
            self.reset()
        if msg_type in EXEMPT:
            return True, None
        limits = self.limits
        now = time.monotonic()
        queue = self._queue
        while queue and queue[0][0] <= now:
            self._count -= 1
            self._bytes -= queue.popleft()[1]
        counted = size if msg_type == "stream" else 0
        self._count += 1
        self._bytes += counted
        queue.append((now + limits.window, counted))
        msg_rate = self._count / limits.window
        data_rate = self._bytes / limits.window
        notice = None
        if limits.msg_rate > 0 and msg_rate > limits.msg_rate:
            if not self._msgs_exceeded:
                self._msgs_exceeded = True
                notice = self._notice("message", "msg", limits.msg_rate, "msgs")
        elif self._msgs_exceeded and msg_rate < 0.8 * limits.msg_rate:
            self._msgs_exceeded = False
            if not self._data_exceeded:
                log.warning("iopub messages resumed")
        if limits.data_rate > 0 and data_rate > limits.data_rate:
            if not self._data_exceeded:
                self._data_exceeded = True
                notice = notice or self._notice("data", "data", limits.data_rate, "bytes")
        elif self._data_exceeded and data_rate < 0.8 * limits.data_rate:
            self._data_exceeded = False
            if not self._msgs_exceeded:
                log.warning("iopub messages resumed")
        if notice is not None:
            log.warning("%s", notice.splitlines()[0])
        if self._msgs_exceeded or self._data_exceeded:
            # not sent: it does not count toward the rate
            self._count -= 1
            self._bytes -= counted
            queue.pop()
            return False, notice
        return True, notice

    def _notice(self, what: str, key: str, limit: float, unit: str) -> str:
        return NOTICE.format(what=what, key=key, limit=_number(limit), unit=unit, window=_number(self.limits.window))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
