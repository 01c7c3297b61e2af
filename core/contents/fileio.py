"""Blocking file primitives of the file-system contents manager (run them in a thread).

Writes are atomic: the new bytes go to a temporary file in the target's directory, are
fsync'ed, take the original file's permission bits (and owner, when we may), and replace the
target with ``os.replace``. A failure at any step leaves the old file exactly as it was: a save
never truncates. (jupyter_server instead rewrites the target in place after copying a backup.)
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from ..errors import ApiError

T = TypeVar("T")
TEMP_PREFIX = ".~carme-"  # hidden, so temp files never show in listings


def current_umask() -> int:
    """The process umask (read once at start-up; setting it back at once keeps it unchanged)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def os_errors(path: str) -> Iterator[None]:
    """Turn OSErrors into API errors with a clear status: 403 permission, 404 missing, ..."""
    try:
        yield
    except ApiError:
        raise
    except OSError as exc:
        raise api_error(exc, path) from exc


def api_error(exc: OSError, path: str) -> ApiError:
    """The API error for an OS error on the API path ``path``."""
    code = exc.errno
    reason = exc.strerror or type(exc).__name__
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ApiError(403, f"Permission denied: {path} ({reason})", "Forbidden")
    if code == errno.ENOENT:
        return ApiError(404, f"No such file or directory: {path}", "Not Found")
    if code in (errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EEXIST, errno.ELOOP, errno.EINVAL):
        return ApiError(400, f"Cannot use {path}: {reason}", "Bad Request")
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return ApiError(507, f"Cannot write {path}: {reason}", "Insufficient Storage")
    return ApiError(500, f"Unexpected error on {path}: {reason}", "Internal Server Error")


def read_bytes(os_path: str) -> bytes:
    with open(os_path, "rb") as f:
        return f.read()


def _new_mode(os_path: str, umask: int) -> tuple[int, int | None, int | None]:
    """Mode, uid and gid the written file should have: the old file's, else the umask default."""
    try:
        st = os.stat(os_path)
    except FileNotFoundError:
        return 0o666 & ~umask, None, None
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def _finish_temp(fd: int, tmp: str, os_path: str, umask: int, fsync: bool, mode: int | None = None) -> None:
    """fsync, set permissions like the old file (or ``mode`` for a new one), move over ``os_path``."""
    old_mode, uid, gid = _new_mode(os_path, umask)
    if fsync:
        os.fsync(fd)
    os.fchmod(fd, old_mode if mode is None or uid is not None else mode)
    if uid is not None and gid is not None and (uid, gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(OSError):  # only root may give a file away; keep going if not
            os.fchown(fd, uid, gid)
    os.replace(tmp, os_path)


@contextlib.contextmanager
def _temp_beside(os_path: str) -> Iterator[tuple[int, str]]:
    """A temporary file in the directory of ``os_path``: (fd, path); removed if the block fails."""
    directory, name = os.path.split(os_path)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{name[:100]}.", suffix=".tmp", dir=directory)
    try:
        yield fd, tmp
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)


def atomic_write(os_path: str, data: bytes | Iterable[bytes], *, umask: int = 0o022, fsync: bool = True) -> None:
    """Write ``data`` (bytes, or pieces of bytes made as they are written) to ``os_path``
    atomically (see the module docstring); an error while making the pieces leaves the old file.

    When the directory is not writable but the file is, the file is rewritten in place
    (as jupyter_server does); the data is fully made before, so only an I/O error can cut it.
    """
    pieces = [data] if isinstance(data, bytes | bytearray) else data
    if not os.access(os.path.dirname(os_path) or ".", os.W_OK) and os.access(os_path, os.W_OK):
        whole = b"".join(pieces)
        with open(os_path, "r+b") as f:
            f.write(whole)
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
        return
    with _temp_beside(os_path) as (fd, tmp):
        with os.fdopen(fd, "wb", closefd=False) as f:
            for piece in pieces:
                f.write(piece)
        _finish_temp(fd, tmp, os_path, umask, fsync)


def atomic_write_beside(os_path: str, data: bytes, work: Callable[[], T], *, umask: int = 0o022) -> T:
    """:func:`atomic_write` of ``data`` while ``work()`` runs on this thread; returns its result.

    The bytes are written and fsync'ed by a helper thread (those calls let other threads run), so
    CPU work such as checking what is saved does not wait for the disk. The file is replaced only
    once both are done: when either fails, the old file stays as it was.
    """
    if not os.access(os.path.dirname(os_path) or ".", os.W_OK):
        result = work()  # the in-place rewrite of atomic_write: no temporary file to fill early
        atomic_write(os_path, data, umask=umask)
        return result
    with _temp_beside(os_path) as (fd, tmp):
        failed: list[BaseException] = []

        def write() -> None:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except BaseException as exc:  # raised on the caller's thread below
                failed.append(exc)

        writer = threading.Thread(target=write, name="carme-write")
        writer.start()
        try:
            result = work()
        finally:
            writer.join()
        if failed:
            raise failed[0]
        _finish_temp(fd, tmp, os_path, umask, fsync=False)
    return result


def atomic_copy(src: str, dst: str, *, umask: int = 0o022, fsync: bool = True) -> None:
    """Copy the bytes of ``src`` over ``dst`` atomically (checkpoints, copies, restores).

    A new file takes the source's permission bits, as shutil.copy does; times are kept as copy2.
    """
    with _temp_beside(dst) as (fd, tmp):
        with open(src, "rb") as source, os.fdopen(fd, "wb", closefd=False) as target:
            shutil.copyfileobj(source, target, 1024 * 1024)
        _finish_temp(fd, tmp, dst, umask, fsync, mode=stat.S_IMODE(os.stat(src).st_mode))
    with contextlib.suppress(OSError):
        st = os.stat(src)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def upload_temp_path(os_path: str) -> str:
    """Where the chunks of an upload to ``os_path`` collect until the last one arrives."""
    directory, name = os.path.split(os_path)
    return os.path.join(directory, f"{TEMP_PREFIX}{name[:100]}.upload")


def write_chunk(os_path: str, data: bytes, chunk: int, *, umask: int = 0o022) -> str:
    """Store one chunk of a chunked upload; returns the path now holding the upload.

    Chunk 1 starts the temporary file, later chunks append to it, and chunk -1 appends and
    moves it over the target atomically: a half-finished upload is never visible under its name
    (jupyter_server appends to the target itself).
    """
    tmp = upload_temp_path(os_path)
    if chunk == 1:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    else:
        if not os.path.exists(tmp):
            if chunk == -1 and not os.path.exists(os_path):
                atomic_write(os_path, data, umask=umask)  # a one-chunk upload
                return os_path
            raise ApiError(400, f"chunk {chunk} of an upload to {os.path.basename(os_path)!r} arrived "
                                "without chunk 1 (the upload was not started or already finished)",
                           "Bad Request")
        flags = os.O_WRONLY | os.O_APPEND
    fd = os.open(tmp, flags | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
        if chunk == -1:
            _finish_temp(fd, tmp, os_path, umask, fsync=True)
            return os_path
    except BaseException:
        if chunk == -1:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    finally:
        os.close(fd)
    return tmp


def tree_size(os_path: str, limit: int) -> int:
    """Bytes under a directory, stopping early once ``limit`` is passed (copy size check)."""
    total = 0
    stack = [os_path]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    with contextlib.suppress(OSError):
                        total += entry.stat(follow_symlinks=False).st_size
                if total > limit:
                    return total
    return total
