"""The built-in contents manager: notebooks, files and directories under one root folder.

Every blocking step (stat, read, parse, validate, serialize, write) runs in a worker thread,
never on the event loop. Listings are one ``os.scandir`` pass with stat from the DirEntry and no
per-child ``get``; notebooks go through :mod:`carme.contents.notebooks` (orjson + compiled schema
validation); writes are atomic (:mod:`carme.contents.fileio`); nothing outside the root is ever
read or written (:mod:`carme.contents.paths`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from ..errors import ApiError
from . import checkpoints, fileio, notebooks
from .manager import ContentsManager
from .models import FileStream, Model, file_content, guess_mimetype, hash_beside, kind_of, stat_model
from .paths import PathPolicy, join, normalize, split
from .streamed import PIECE, StreamedText
from .trust import Notary

log = logging.getLogger("carme.contents")
T = TypeVar("T")


def not_found(path: str) -> ApiError:
    return ApiError(404, f"file or directory {path!r} does not exist", "Not Found")


def _reported(pieces: Iterator[bytes], path: str) -> Iterator[bytes]:
    """The pieces of a streamed save; bad content is a 400 (the write stops, the old file stays)."""
    try:
        yield from pieces
    except (ValueError, UnicodeError) as exc:
        raise bad_request(f"Encoding error saving {path}: {exc}") from None


def bad_request(message: str, reason: str = "Bad Request") -> ApiError:
    return ApiError(400, message, reason)


class FileContentsManager(ContentsManager):
    """Contents stored as plain files under ``root`` (see the module docstring)."""

    streams_content = True

    def __init__(self, root: str, *, allow_hidden: bool = False, allow_symlinks_outside_root: bool = False,
                 hide_globs: list[str] | None = None, max_copy_folder_size_mb: int = 500,
                 delete_to_trash: bool = False, always_delete_dir: bool = True,
                 untitled_notebook: str = "Untitled", untitled_file: str = "untitled",
                 untitled_directory: str = "Untitled Folder", notary: Notary | None = None) -> None:
        super().__init__()
        self.notary = notary
        self.policy = PathPolicy(root, allow_hidden, allow_symlinks_outside_root, list(hide_globs or []))
        self.max_copy_bytes = max_copy_folder_size_mb * 1024 * 1024
        self.always_delete_dir = always_delete_dir
        self.untitled_notebook, self.untitled_file = untitled_notebook, untitled_file
        self.untitled_directory = untitled_directory
        self.umask = fileio.current_umask()
        self._trash: Callable[[str], None] | None = None
        if delete_to_trash:
            try:
                from send2trash import send2trash
            except ImportError:
                log.warning("delete_to_trash is on but send2trash is not installed; deleting directly")
            else:
                self._trash = send2trash

    @property
    def root(self) -> str:
        return self.policy.root

    @property
    def allow_hidden(self) -> bool:
        return self.policy.allow_hidden

    async def _run(self, path: str, func: Callable[..., T], *args: Any) -> T:
        """Run blocking ``func`` in a thread, OS errors turned into API errors naming ``path``."""
        def call() -> T:
            with fileio.os_errors(path):
                return func(*args)

        return await asyncio.to_thread(call)

    def _resolve(self, path: str, *, writing: bool = False, verb: str = "create") -> str:
        """OS path of ``path`` under the policy; hidden is 404 for reads, 400 for writes."""
        os_path = self.policy.os_path(path)
        if not self.policy.allow_hidden and self.policy.is_hidden(path):
            if writing:
                raise bad_request(f"Cannot {verb} file or directory {path!r}")
            raise not_found(path)
        return os_path

    # -- queries ------------------------------------------------------------------------------

    async def _test(self, path: str, test: Callable[[str], bool]) -> bool:
        path = normalize(path)
        return await self._run(path, lambda: test(self.policy.os_path(path)))

    async def exists(self, path: str) -> bool:
        return await self._test(path, os.path.exists)

    async def file_exists(self, path: str) -> bool:
        return await self._test(path, os.path.isfile)

    async def dir_exists(self, path: str) -> bool:
        return await self._test(path, os.path.isdir)

    async def is_hidden(self, path: str) -> bool:
        path = normalize(path)
        return await self._run(path, lambda: bool(self.policy.os_path(path)) and self.policy.is_hidden(path))

    async def get(self, path: str, *, content: bool = True, type: str | None = None,
                  format: str | None = None, require_hash: bool = False, validate: bool = True,
                  mark_trusted: bool = True) -> Model:
        path = normalize(path)
        model = await self._run(path, self._get_sync, path, content, type, format, require_hash, validate,
                                mark_trusted)
        await self.changed("get", path)
        return model

    def _stat(self, path: str, os_path: str) -> os.stat_result:
        try:
            return os.stat(os_path)
        except (FileNotFoundError, NotADirectoryError):
            raise ApiError(404, f"No such file or directory: {path}", "Not Found") from None

    def _get_sync(self, path: str, content: bool, type: str | None, format: str | None,
                  require_hash: bool, validate: bool = True, trust: bool = False) -> Model:
        os_path = self._resolve(path)
        st = self._stat(path, os_path)
        if stat.S_ISDIR(st.st_mode):
            if type not in (None, "directory"):
                raise bad_request(f"{path} is a directory, not a {type}", "bad type")
            return self._dir_model(path, os_path, st, content)
        if type == "directory":
            raise bad_request(f"{path} is not a directory", "bad type")
        if not stat.S_ISREG(st.st_mode):
            raise bad_request(f"Cannot read non-file {path}")
        kind = "notebook" if type == "notebook" or (type is None and path.endswith(".ipynb")) else "file"
        model = stat_model(path, st, kind, self.policy.may(st, os.W_OK))
        data = fileio.read_bytes(os_path) if content or require_hash else b""
        finish_hash = hash_beside(data) if require_hash else None  # hashed while it is parsed
        if content and kind == "notebook":
            notary = self.notary if trust else None
            checks: list[Future[bool]] = []  # the trust check (an HMAC of it all), beside the validation
            loaded = None if notary is None else (lambda nb: checks.append(notary.check_soon(nb)))
            nb, message = notebooks.parse(data, path, validate=validate, loaded=loaded)
            if notary is not None:
                notary.mark_cells(nb, checks[0] if checks else None)
            model.update(content=nb, format="json")
            if message:
                model["message"] = message
        elif content:
            model["content"], model["format"] = file_content(data, format, path)
            if model["mimetype"] is None:
                model["mimetype"] = "text/plain" if model["format"] == "text" else "application/octet-stream"
        if finish_hash is not None:
            finish_hash(model)
        return model

    def _dir_model(self, path: str, os_path: str, st: os.stat_result, content: bool) -> Model:
        model = stat_model(path, st, "directory", self.policy.may(st, os.W_OK))
        if not content:
            return model
        policy, children = self.policy, []
        mimetypes: dict[str, str | None] = {}  # by suffix chain: one guess per extension, not per file
        with os.scandir(os_path) as entries:
            for entry in entries:
                name = entry.name
                if not policy.should_list(name):
                    continue
                try:
                    name.encode("utf-8")
                    if entry.is_symlink():
                        if not policy.link_allowed(entry.path):
                            continue
                        child = entry.stat()
                    else:
                        child = entry.stat(follow_symlinks=False)
                except (OSError, UnicodeEncodeError):
                    continue  # broken links, loops, undecodable names, races with deletion
                mode = child.st_mode
                if stat.S_ISDIR(mode):
                    if not policy.allow_hidden and not policy.may(child, os.R_OK | os.X_OK):
                        continue  # jupyter_server treats directories it cannot enter as hidden
                elif not stat.S_ISREG(mode):
                    continue  # sockets, FIFOs, devices
                kind = kind_of(name, child)
                entry_model = stat_model(join(path, name), child, kind, policy.may(child, os.W_OK), mimetype=None)
                if kind == "file":
                    suffix = name[name.find("."):] if "." in name else ""
                    if suffix not in mimetypes:
                        mimetypes[suffix] = guess_mimetype(name) if suffix else None
                    entry_model["mimetype"] = mimetypes[suffix]
                children.append(entry_model)
        model["content"], model["format"] = children, "json"
        return model

    async def open_file(self, path: str) -> FileStream:
        path = normalize(path)

        def find() -> FileStream:
            os_path = self._resolve(path)
            st = self._stat(path, os_path)
            if not stat.S_ISREG(st.st_mode):
                raise not_found(path)
            return FileStream(split(path)[1], st.st_size, st.st_mtime, os_path=os.path.realpath(os_path),
                              stat_result=st)

        return await self._run(path, find)

    # -- saving -------------------------------------------------------------------------------

    async def save(self, model: dict[str, Any], path: str, *, action: str = "save") -> Model:
        path = normalize(path)
        if not isinstance(model, dict):
            raise bad_request("the model must be a JSON object")
        kind = model.get("type")
        if not kind:
            raise bad_request("No file type provided")
        if kind not in ("notebook", "file", "directory"):
            raise bad_request(f"Unhandled contents type: {kind!r}")
        if "content" not in model and kind != "directory":
            raise bad_request("No file content provided")
        chunk = model.get("chunk")
        if chunk is not None:
            if isinstance(chunk, bool) or not isinstance(chunk, int) or (chunk < 1 and chunk != -1):
                raise bad_request(f"chunk {chunk!r} is invalid: expected 1, 2, ... and -1 for the last")
            if kind != "file":
                raise bad_request(f'File type "{kind}" is not supported for large file transfer')
        if kind == "notebook" and self.notary is not None and isinstance(model["content"], dict):
            model = {**model, "content": notebooks.own_copy(model["content"])}  # signing drops the flags
            await self.notary.sign_if_trusted(model["content"])
        saved = await self._run(path, self._save_sync, model, path, kind, chunk)
        if chunk is None or chunk == -1:
            await self.changed("upload" if chunk == -1 else action, path)
        return saved

    def _save_sync(self, model: dict[str, Any], path: str, kind: str, chunk: int | None) -> Model:
        if not path:
            raise bad_request("Cannot save over the root directory")
        os_path = self._resolve(path, writing=True)
        target = self.policy.real_path(os_path)
        message = None
        if kind == "directory":
            if not os.path.exists(os_path):
                os.mkdir(os_path)
            elif not os.path.isdir(os_path):
                raise bad_request(f"Not a directory: {path}")
        elif kind == "notebook":
            content = model["content"]
            data, _ = notebooks.serialize(content, path, validate=False)
            # Validated while its bytes go to disk (an invalid notebook is saved anyway, with a message).
            message = fileio.atomic_write_beside(target, data, lambda: notebooks.validation_message(content),
                                                 umask=self.umask)
            if not checkpoints.list_checkpoints(os_path):  # the first save keeps a checkpoint
                try:
                    checkpoints.create_checkpoint(os_path, path, self.umask)
                except OSError as exc:  # e.g. a read-only directory: the save itself succeeded
                    log.warning("no checkpoint for %s: %s", path, exc)
        else:
            data = self._file_bytes(model, path)
            if chunk is not None:
                whole = data if isinstance(data, bytes) else b"".join(data)
                written = fileio.write_chunk(target, whole, chunk, umask=self.umask)
                if written != target:  # upload in progress: report the part received so far
                    st = os.stat(written)
                    return stat_model(path, st, kind_of(path, st), True)
            else:
                fileio.atomic_write(target, data, umask=self.umask)
        saved = self._get_sync(path, False, None, None, False)
        if message:
            saved["message"] = message
        return saved

    @staticmethod
    def _file_bytes(model: dict[str, Any], path: str) -> bytes | Iterator[bytes]:
        format, content = model.get("format"), model["content"]
        if format not in ("text", "base64"):
            raise bad_request("Must specify format of file contents as 'text' or 'base64'")
        if isinstance(content, StreamedText):
            return _reported(content.bytes_pieces(format), path)
        if not isinstance(content, str):
            raise bad_request(f"content of {path} must be a string for format {format!r}, "
                              f"not {type(content).__name__}")
        try:
            if format == "text":
                if len(content) > PIECE:  # a big text encoded piece by piece as it is written
                    return (content[i:i + PIECE].encode("utf-8") for i in range(0, len(content), PIECE))
                return content.encode("utf-8")
            # Line breaks are fine (jupyter_server sends base64 wrapped at 76 columns); any other
            # stray character is an error, not silently dropped (which would save garbage).
            return base64.b64decode(content.encode("ascii").translate(None, b" \t\r\n"), validate=True)
        except (UnicodeError, binascii.Error, ValueError) as exc:
            raise bad_request(f"Encoding error saving {path}: {exc}") from None

    def trust_check(self, nb: dict[str, Any]) -> Future[bool] | None:
        return None if self.notary is None else self.notary.check_soon(nb)

    async def trust_notebook(self, path: str) -> None:
        path = normalize(path)
        model = await self._run(path, self._get_sync, path, True, None, None, False)
        if model["type"] != "notebook":
            raise bad_request(f"{path} is not a notebook")
        if self.notary is None:
            raise ApiError(501, "notebook trust is turned off (trust_notebooks)", "Not Implemented")
        await self.notary.sign_if_trusted(model["content"], force=True)

    # -- delete, rename, copy -----------------------------------------------------------------

    async def delete(self, path: str) -> None:
        path = normalize(path)
        if not path:
            raise bad_request("Can't delete root")
        await self._run(path, self._delete_sync, path)
        await self.changed("delete", path)

    def _delete_sync(self, path: str) -> None:
        os_path = self._resolve(path, writing=True, verb="delete")
        try:
            st = os.lstat(os_path)
        except FileNotFoundError:
            raise ApiError(404, f"File or directory does not exist: {path}", "Not Found") from None
        is_dir = stat.S_ISDIR(st.st_mode)
        if is_dir and not self.always_delete_dir and set(os.listdir(os_path)) - {checkpoints.CHECKPOINT_DIR}:
            raise bad_request(f"Directory {path} not empty")
        if self._trash is not None:
            try:
                self._trash(os_path)
            except OSError as exc:
                raise bad_request(f"send2trash failed: {exc}") from exc
        elif is_dir:
            shutil.rmtree(os_path)
        else:
            os.unlink(os_path)  # a symlink is removed itself, never its target
        if not is_dir:
            checkpoints.delete_checkpoints(os_path)

    async def rename(self, old_path: str, new_path: str) -> Model:
        old_path, new_path = normalize(old_path), normalize(new_path)
        if not old_path or not new_path:
            raise bad_request("Cannot rename the root directory or rename onto it")
        if old_path == new_path:
            return await self.get(new_path, content=False)
        model = await self._run(old_path, self._rename_sync, old_path, new_path)
        await self.changed("rename", new_path, old_path)
        return model

    def _rename_sync(self, old_path: str, new_path: str) -> Model:
        old_os = self._resolve(old_path, writing=True, verb="rename")
        new_os = self._resolve(new_path, writing=True, verb="rename")
        if not os.path.lexists(old_os):
            raise ApiError(404, f"File or directory does not exist: {old_path}", "Not Found")
        if os.path.lexists(new_os) and not os.path.samefile(old_os, new_os):
            raise ApiError(409, f"File already exists: {new_path}", "Conflict")
        try:
            os.rename(old_os, new_os)
        except FileNotFoundError:
            raise ApiError(404, f"No such directory for {new_path}", "Not Found") from None
        except OSError as exc:
            if exc.errno != 18:  # EXDEV: another file system under the root
                raise
            shutil.move(old_os, new_os)
        if not os.path.isdir(new_os):
            checkpoints.rename_checkpoints(old_os, new_os)
        return self._get_sync(new_path, False, None, None, False)

    async def copy(self, from_path: str, to_path: str | None = None) -> Model:
        from_path = normalize(from_path)
        self.policy.os_path(from_path)  # outside the root is a 404 before anything else
        if to_path is not None:
            self.policy.os_path(normalize(to_path))
        if self.policy.is_hidden_path(from_path) or (to_path and self.policy.is_hidden_path(to_path)):
            if not self.allow_hidden:
                raise bad_request(f"Cannot copy file or directory {from_path!r}")
        from_dir, from_name = split(from_path)
        target_dir = from_dir if to_path is None else normalize(to_path)
        if await self.dir_exists(target_dir):
            dest = join(target_dir, await self.copy_name(from_name, target_dir))
        elif to_path is None:
            raise ApiError(404, f"No such directory: {target_dir}", "Not Found")
        else:
            parent = split(target_dir)[0]
            if not await self.dir_exists(parent):
                raise ApiError(404, f"No such parent directory: {parent} to copy file in", "Not Found")
            dest = target_dir
        model = await self._run(from_path, self._copy_sync, from_path, dest)
        await self.changed("copy", dest, from_path)
        return model

    def _copy_sync(self, from_path: str, dest: str) -> Model:
        src = self._resolve(from_path)
        dst = self._resolve(dest, writing=True, verb="copy")
        st = self._stat(from_path, src)
        if os.path.lexists(dst):
            raise ApiError(409, f"File already exists: {dest}", "Conflict")
        if stat.S_ISDIR(st.st_mode):
            size = fileio.tree_size(src, self.max_copy_bytes)
            if size > self.max_copy_bytes:
                raise bad_request(f"Can't copy folders larger than {self.max_copy_bytes // (1024 * 1024)}MB, "
                                  f"{from_path!r} is larger")
            staging = os.path.join(os.path.dirname(dst), f"{fileio.TEMP_PREFIX}{os.path.basename(dst)[:100]}.copy")
            try:
                shutil.copytree(src, staging, symlinks=True)
                os.rename(staging, dst)  # the copy appears whole or not at all
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        elif stat.S_ISREG(st.st_mode):
            fileio.atomic_copy(os.path.realpath(src), dst, umask=self.umask)
            if dest.endswith(".ipynb") and not checkpoints.list_checkpoints(dst):
                checkpoints.create_checkpoint(dst, dest, self.umask)
        else:
            raise bad_request(f"Cannot copy non-file {from_path}")
        return self._get_sync(dest, False, None, None, False)

    # -- checkpoints --------------------------------------------------------------------------

    def _checkpoint_target(self, path: str) -> str:
        # Beside the file's own (lexical) path, as jupyter_server keeps them, links included.
        return self._resolve(path)

    async def list_checkpoints(self, path: str) -> list[dict[str, Any]]:
        path = normalize(path)
        return await self._run(path, lambda: checkpoints.list_checkpoints(self._checkpoint_target(path)))

    async def create_checkpoint(self, path: str) -> dict[str, Any]:
        path = normalize(path)
        return await self._run(path, lambda: checkpoints.create_checkpoint(
            self._checkpoint_target(path), path, self.umask))

    async def restore_checkpoint(self, checkpoint_id: str, path: str) -> None:
        path = normalize(path)
        await self._run(path, lambda: checkpoints.restore_checkpoint(
            self._checkpoint_target(path), path, checkpoint_id, self.umask))
        await self.changed("save", path)

    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        path = normalize(path)
        await self._run(path, lambda: checkpoints.delete_checkpoint(self._checkpoint_target(path), path,
                                                                    checkpoint_id))
