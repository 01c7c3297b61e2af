"""The fork server: a warm ipykernel process that starts kernels by forking itself.

Run by path in the kernel's own Python (``python .../forkserver_main.py FD [NO_DROP_LAUNCHER]``),
never imported by carme: it needs only ipykernel. FD is one end of a socket pair; carme holds
the other. Starting a kernel the usual way spends most of its time importing ipykernel, IPython
and debugpy (and compiling them, where no bytecode cache is written); this process pays that
once, then each kernel is a fresh ``fork()`` of it that only builds its kernel app.

Start-up (the warm-up): import the kernel app, then fork a *probe* child that initializes a
complete kernel app (with an empty IPython dir: no user startup files, so nothing of the
user's is imported here) and reports the modules it imported; import those too. The server is
ready only if that left it single-threaded (a fork copies no other thread, and a lock one of
them held would stay held in the child); otherwise it says so and carme starts kernels the usual
way. ``gc.freeze()`` keeps the warm objects' pages shared between the kernels.

Lines of JSON on the socket. carme asks ``{"op": "fork", "id", "argv", "cwd", "env"}`` and
``{"op": "reap", "pid"}``; the server says ``{"ready": bool, "pid", "reason"?}`` once, then
``{"id", "pid"}`` or ``{"id", "error"}`` per fork, and ``{"exit": pid, "code"}`` when a kernel
ends. A kernel's exit is seen without reaping it (``waitid(WNOWAIT)``): its pid stays taken
until carme, which may still signal it, asks for the reap. On EOF (carme stopped or died) the
server kills the kernels still running and exits; a kernel whose server died exits by itself
(ipykernel's parent poller, on ``JPY_PARENT_PID``).
"""

import atexit
import gc
import importlib
import importlib.util
import json
import os
import selectors
import signal
import socket
import sys
import tempfile
import threading

# Running a file by path puts its folder first on sys.path: carme_dashboards' modules there
# (markdown.py, settings.py, ...) must not shadow what the kernels import.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

PROBE_TIMEOUT = 120.0  # seconds the probe may take to initialize a kernel app (a loaded machine)


def load_app(no_drop_launcher):
    """The kernel application class: ipykernel's, or carme's no-drop one (loaded from its file)."""
    if not no_drop_launcher:
        from ipykernel.kernelapp import IPKernelApp

        return IPKernelApp
    spec = importlib.util.spec_from_file_location("_carme_ipykernel_no_drop", no_drop_launcher)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.NoDropKernelApp


def probe_modules(app_class):
    """The modules a kernel app imports while it initializes, found in a throwaway child."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            with tempfile.TemporaryDirectory() as scratch:
                os.environ["IPYTHONDIR"] = os.path.join(scratch, "ipython")
                connection_file = os.path.join(scratch, "probe.json")
                with open(connection_file, "w") as f:  # port 0 everywhere: the app binds free ones
                    json.dump({"ip": "127.0.0.1", "transport": "tcp", "key": os.urandom(16).hex(),
                               "signature_scheme": "hmac-sha256"}, f)
                app = app_class.instance()
                app.initialize(["-f", connection_file])
                os.write(write_end, json.dumps(list(sys.modules)).encode())
                code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    selector = selectors.DefaultSelector()
    selector.register(read_end, selectors.EVENT_READ)
    while selector.select(PROBE_TIMEOUT):
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    else:
        os.kill(pid, signal.SIGKILL)
    selector.close()
    os.close(read_end)
    os.waitpid(pid, 0)
    try:
        return json.loads(b"".join(chunks) or b"[]")
    except ValueError:
        return []


def warm_up(app_class):
    """Import what a kernel needs; None when ready, else why forking is unsafe."""
    for name in probe_modules(app_class):
        if name in sys.modules or name.startswith("__"):
            continue
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - an alias or a module that needs its package's setup
            pass
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:
        return f"importing the kernel started threads ({', '.join(threads)})"
    gc.collect()
    gc.freeze()
    return None


class ForkServer:
    def __init__(self, sock, app_class):
        self.sock = sock
        self.app_class = app_class
        self.ready = False
        self.running = set()  # kernels not yet seen to exit
        self.exited = set()  # seen to exit, not yet reaped
        self.buffer = b""
        self.selector = None
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_write, False)

    def send(self, message):
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def serve(self, reason):
        self.ready = reason is None
        self.send({"ready": self.ready, "pid": os.getpid(), **({"reason": reason} if reason else {})})
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_write)
        self.selector = selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        selector.register(self.wake_read, selectors.EVENT_READ)
        try:
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self.sock:
                        data = self.sock.recv(65536)
                        if not data:
                            return
                        self.buffer += data
                        while b"\n" in self.buffer:
                            line, self.buffer = self.buffer.split(b"\n", 1)
                            self.handle(json.loads(line))
                    else:
                        os.read(self.wake_read, 4096)
                        self.check_exits()
        finally:
            self.kill_all()

    def handle(self, request):
        if request.get("op") == "reap":
            pid = request["pid"]
            if pid in self.exited:
                self.exited.discard(pid)
                os.waitpid(pid, 0)
            return
        if not self.ready:
            self.send({"id": request["id"], "error": "the fork server is not ready"})
            return
        in_session, started = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(in_session)
            os.close(started)
            self.send({"id": request["id"], "error": f"fork failed: {exc}"})
            return
        if pid == 0:
            os.close(in_session)
            self.run_kernel(request, started)  # never returns
        os.close(started)
        # Until the child's setsid() its pid names no process group, and its group is this
        # server's: carme, which signals the group, hears of the pid only once that is done (EOF).
        os.read(in_session, 1)
        os.close(in_session)
        self.running.add(pid)
        self.send({"id": request["id"], "pid": pid})

    def check_exits(self):
        for pid in list(self.running):
            try:
                info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                info = None
                self.running.discard(pid)
                self.send({"exit": pid, "code": -1})
                continue
            if info is None:
                continue
            self.running.discard(pid)
            self.exited.add(pid)
            code = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
            self.send({"exit": pid, "code": code})

    def kill_all(self):
        for pid in self.running:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in self.running | self.exited:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass

    def run_kernel(self, request, started):
        """In the forked child: become the kernel the request describes, then exit. ``started``
        is closed once it is in its own session (the server waits for that)."""
        code = 1
        try:
            os.setsid()  # its own process group, as carme's local kernels: interrupts reach only it
            os.close(started)
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_DFL)
            self.selector.close()
            self.sock.close()
            os.close(self.wake_read)
            os.close(self.wake_write)
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            # The server is the parent: when it ends, the kernel ends (ipykernel's parent poller).
            # ipykernel read JPY_PARENT_PID when this server imported it: say it again.
            parent = str(os.getppid())
            os.environ["JPY_PARENT_PID"] = parent
            argv = [*request["argv"], f"--IPKernelApp.parent_handle={parent}"]
            launcher = request["launcher"]
            if request.get("module"):
                sys.path.insert(0, os.getcwd())  # as ``python -m`` would have, with its file as argv[0]
                spec = importlib.util.find_spec(launcher)
                launcher = spec.origin if spec is not None and spec.origin else launcher
            sys.argv = [launcher, *request["argv"]]
            self.app_class.launch_instance(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - reported on the kernel's stderr, as a crash would be
            import traceback

            traceback.print_exc()
        finally:
            try:
                atexit._run_exitfuncs()
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)


def die_with_parent():
    """SIGKILL this server when carme's process dies, however it dies (Linux only)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main():
    sock = socket.socket(fileno=int(sys.argv[1]))
    sock.setblocking(True)
    die_with_parent()
    try:
        app_class = load_app(sys.argv[2] if len(sys.argv) > 2 else "")
        reason = warm_up(app_class)
    except Exception as exc:  # noqa: BLE001 - ipykernel missing or broken: carme starts kernels itself
        app_class, reason = None, f"{type(exc).__name__}: {exc}"
    ForkServer(sock, app_class).serve(reason)


if __name__ == "__main__":
    main()
