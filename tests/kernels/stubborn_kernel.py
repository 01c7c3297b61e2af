"""A kernel that speaks just enough of the Jupyter protocol to start (kernel_info on shell, status
on iopub, heartbeat) and ignores shutdown_request, for the shutdown escalation tests.

Usage: python stubborn_kernel.py MARKER term|ignore CONNECTION_FILE. It appends each control
message type it gets to MARKER; with ``ignore`` it also ignores SIGTERM, so only SIGKILL stops it.
"""

import datetime
import hashlib
import hmac
import json
import signal
import sys
import uuid

import zmq

marker, mode, connection_file = sys.argv[1:4]
if mode == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
info = json.load(open(connection_file))
key = info["key"].encode()
context = zmq.Context()
url = f"{info['transport']}://{info['ip']}:"
shell, control, stdin = (context.socket(zmq.ROUTER) for _ in range(3))
iopub, hb = context.socket(zmq.PUB), context.socket(zmq.REP)
for sock, name in ((shell, "shell"), (control, "control"), (stdin, "stdin"), (iopub, "iopub"), (hb, "hb")):
    sock.bind(url + str(info[f"{name}_port"]))


def send(sock, identities, msg_type, content, parent):
    header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": "stubborn", "username": "stubborn",
              "date": datetime.datetime.now(datetime.UTC).isoformat(), "version": "5.3"}
    parts = [json.dumps(p).encode() for p in (header, parent, {}, content)]
    signature = hmac.new(key, b"".join(parts), hashlib.sha256).hexdigest().encode()
    sock.send_multipart([*identities, b"<IDS|MSG>", signature, *parts])


poller = zmq.Poller()
for sock in (shell, control, hb):
    poller.register(sock, zmq.POLLIN)
while True:
    for sock, _ in poller.poll():
        if sock is hb:
            hb.send(hb.recv())
            continue
        frames = sock.recv_multipart()
        split = frames.index(b"<IDS|MSG>")
        identities, header = frames[:split], json.loads(frames[split + 2])
        if sock is control:
            with open(marker, "a") as f:
                f.write(header["msg_type"] + "\n")
            continue  # shutdown_request and everything else on control: ignored
        if header["msg_type"] == "kernel_info_request":
            send(iopub, [b"status"], "status", {"execution_state": "busy"}, header)
            send(shell, identities, "kernel_info_reply",
                 {"status": "ok", "protocol_version": "5.3", "implementation": "stubborn",
                  "language_info": {"name": "python"}}, header)
            send(iopub, [b"status"], "status", {"execution_state": "idle"}, header)
