"""Run ipykernel with an iopub socket that queues output instead of dropping it.

Run by path (``python .../ipykernel_no_drop.py -f CONNECTION_FILE``), never imported: it needs
nothing of carme, only ipykernel in the kernel's own environment.

ipykernel's iopub PUB socket keeps ZMQ's default send high-water mark of 1,000 messages per
subscriber. When a subscriber's ZMQ I/O thread falls behind for a moment (an output flood on a
busy machine), the kernel silently drops output: jupyter_server loses part of a 20,000-message
burst that way. carme's iopub subscribers never stop reading (receive HWM 0, backpressure is
applied further on), so lifting the kernel's limit turns those drops into a short queue. Only the
socket ipykernel makes for iopub is changed; sockets made by user code keep ZMQ's defaults.
"""

import os
import sys

# Running a file by path puts its folder first on sys.path (unless PYTHONSAFEPATH is set); carme's
# kernel modules there (session.py, message.py, ...) must not shadow what the kernel imports.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import zmq  # noqa: E402
from ipykernel.kernelapp import IPKernelApp  # noqa: E402


class NoDropKernelApp(IPKernelApp):
    """IPKernelApp whose iopub socket has no send high-water mark."""

    def init_iopub(self, context):  # type: ignore[no-untyped-def]
        bind = zmq.Socket.bind

        def bind_without_send_limit(sock, *args, **kwargs):  # type: ignore[no-untyped-def]
            if sock.socket_type in (zmq.PUB, zmq.XPUB):
                sock.setsockopt(zmq.SNDHWM, 0)
            return bind(sock, *args, **kwargs)

        zmq.Socket.bind = bind_without_send_limit  # type: ignore[method-assign]
        try:
            return super().init_iopub(context)
        finally:
            zmq.Socket.bind = bind  # type: ignore[method-assign]


if __name__ == "__main__":
    NoDropKernelApp.launch_instance()
