"""The contents manager interface: what /api/contents and /files need from a storage backend.

:class:`ContentsManager` is abstract and async. The built-in implementation is
:class:`carme.contents.filemanager.FileContentsManager`; an extension replaces it by returning
its own from :func:`carme.hooks.carme_contents_manager`. Methods take API paths
(``/``-separated, relative to the root) and return model dicts (see :mod:`carme.contents.models`);
errors are :class:`carme.errors.ApiError` with jupyter_server's status codes.

After every change on disk an implementation calls :meth:`ContentsManager.changed`, which
publishes the ``contents_service`` event and the ``carme_on_contents_changed`` hook. Naming
(untitled files, copies) is shared here: it only needs :meth:`exists`.
"""

from __future__ import annotations

import abc
import itertools
import logging
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

from ..errors import ApiError
from ..listeners import Listeners
from .models import FileStream, Model
from .notebooks import new_notebook
from .paths import join, normalize

log = logging.getLogger("carme.contents")

ChangeListener = Callable[[str, str, "str | None"], Awaitable[None]]
COPY_PATTERN = re.compile(r"\-Copy\d*\.")


class ContentsManager(abc.ABC):
    """Storage for notebooks, files and directories behind the contents API."""

    #: Base names of new untitled entries (settings ``untitled_notebook`` etc.).
    untitled_notebook = "Untitled"
    untitled_file = "untitled"
    untitled_directory = "Untitled Folder"
    #: True when :meth:`save` takes a big file's content as a
    #: :class:`carme.contents.streamed.StreamedText` (decoded piece by piece as it is written)
    #: instead of a str: the contents API then never holds a big upload's text whole.
    streams_content = False

    def __init__(self) -> None:
        self._listeners: Listeners[[str, str, str | None]] = Listeners(log, "contents listener")

    # -- change notification ------------------------------------------------------------------

    def add_listener(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``await listener(action, path, source_path)`` after every operation (``get`` too);
        returns the function that removes it."""
        return self._listeners.add(listener)

    async def changed(self, action: str, path: str, source_path: str | None = None) -> None:
        """Report an operation: ``get``, ``create``, ``save``, ``upload``, ``rename``, ``copy``,
        ``delete``. Listener errors are logged, never raised: the change is already on disk."""
        await self._listeners.notify_async(action, path, source_path)

    # -- queries ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def get(self, path: str, *, content: bool = True, type: str | None = None,
                  format: str | None = None, require_hash: bool = False, validate: bool = True,
                  mark_trusted: bool = True) -> Model:
        """The model of ``path``; with ``content`` its content (a listing for directories).

        ``type`` forces the interpretation (``notebook`` for a non-.ipynb JSON file) and a
        mismatch with a directory is a 400 ``bad type``; ``format`` is ``text`` or ``base64`` for
        files. 404 if missing or hidden (unless hidden files are allowed). ``validate=False``: a
        notebook is not checked against the nbformat schema (no validation ``message``; a reader
        that ignores it saves that work), but a file that is no notebook is still a 400.
        ``mark_trusted=False``: a notebook's code cells get no ``metadata.trusted`` (ask
        :meth:`trust_check` for the verdict, e.g. beside other work on the content).
        """

    @abc.abstractmethod
    async def exists(self, path: str) -> bool:
        """Is there a file or directory at ``path``?"""

    @abc.abstractmethod
    async def file_exists(self, path: str) -> bool:
        """Is there a regular file at ``path``?"""

    @abc.abstractmethod
    async def dir_exists(self, path: str) -> bool:
        """Is there a directory at ``path``?"""

    @abc.abstractmethod
    async def is_hidden(self, path: str) -> bool:
        """Is ``path`` hidden (a dot-component, or a directory that cannot be entered)?"""

    @property
    @abc.abstractmethod
    def allow_hidden(self) -> bool:
        """Are hidden files served and writable?"""

    @abc.abstractmethod
    async def open_file(self, path: str) -> FileStream:
        """What /files sends for ``path``: 404 if it is not a readable file under the policy."""

    # -- changes ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def save(self, model: dict[str, Any], path: str, *, action: str = "save") -> Model:
        """Save a model (``type``, ``format``, ``content``, optional ``chunk``) at ``path``;
        returns the saved model without content (with ``message`` if the notebook is invalid).

        ``action`` is what :meth:`changed` reports (``save``, ``upload`` or ``create``).
        """

    @abc.abstractmethod
    async def delete(self, path: str) -> None:
        """Delete a file or directory and its checkpoints; 400 for the root."""

    @abc.abstractmethod
    async def rename(self, old_path: str, new_path: str) -> Model:
        """Move ``old_path`` to ``new_path`` (checkpoints follow); 409 if the target exists."""

    @abc.abstractmethod
    async def copy(self, from_path: str, to_path: str | None = None) -> Model:
        """Copy a file or directory; into a directory as ``name-Copy1.ext`` (see :meth:`copy_name`)."""

    async def new(self, model: dict[str, Any] | None, path: str, action: str = "create") -> Model:
        """Create ``path`` from ``model`` (empty notebook/file when no content is given)."""
        model = dict(model or {})
        model.setdefault("type", "notebook" if path.endswith(".ipynb") else "file")
        if "content" not in model and model["type"] != "directory":
            if model["type"] == "notebook":
                model["content"], model["format"] = new_notebook(), "json"
            else:
                model.update(type="file", content="", format="text")
        return await self.save(model, path, action=action)

    async def new_untitled(self, path: str = "", type: str = "", ext: str = "") -> Model:
        """Create a new untitled notebook, file or directory in the directory ``path``."""
        path = normalize(path)
        if not await self.dir_exists(path):
            raise ApiError(404, f"No such directory: {path}", "Not Found")
        kind = type or ("notebook" if ext == ".ipynb" else "file")
        insert = ""
        if kind == "directory":
            base, insert = self.untitled_directory, " "
        elif kind == "notebook":
            base, ext = self.untitled_notebook, ".ipynb"
        elif kind == "file":
            base = self.untitled_file
        else:
            raise ApiError(400, f"Unexpected model type: {kind!r}", "Bad Request")
        name = await self.increment_filename(base + ext, path, insert=insert)
        return await self.new({"type": kind}, join(path, name))

    async def increment_filename(self, filename: str, path: str = "", insert: str = "") -> str:
        """The first free name: ``Untitled.ipynb``, ``Untitled1.ipynb``, ... (``.tar.gz`` kept whole)."""
        basename, dot, ext = filename.rpartition(".")
        if ext != "ipynb":
            basename, dot, ext = filename.partition(".")
        suffix = dot + ext
        for i in itertools.count():
            name = f"{basename}{insert}{i}{suffix}" if i else f"{basename}{suffix}"
            if not await self.exists(join(path, name)):
                return name
        raise AssertionError("unreachable")

    async def copy_name(self, from_name: str, to_dir: str) -> str:
        """The name of a copy of ``from_name`` in ``to_dir``: ``b-Copy1.ipynb``, ``b-Copy2.ipynb``..."""
        return await self.increment_filename(COPY_PATTERN.sub(".", from_name), to_dir, insert="-Copy")

    def trust_check(self, nb: dict[str, Any]) -> Future[bool] | None:
        """Start finding out the ``metadata.trusted`` that :meth:`get` gives the code cells of
        ``nb`` (read with ``mark_trusted=False``; only read here); None: it gives them none.
        Callable from any thread; the result may block: wait for it off the event loop."""
        return None

    async def trust_notebook(self, path: str) -> None:
        """Sign the notebook at ``path`` so its outputs are trusted when it is opened again."""
        raise ApiError(501, f"{type(self).__name__} does not sign notebooks", "Not Implemented")

    # -- checkpoints --------------------------------------------------------------------------

    @abc.abstractmethod
    async def list_checkpoints(self, path: str) -> list[dict[str, Any]]:
        """``[{"id", "last_modified"}]`` for ``path`` (empty when it has none)."""

    @abc.abstractmethod
    async def create_checkpoint(self, path: str) -> dict[str, Any]:
        """Snapshot ``path``; returns ``{"id", "last_modified"}``."""

    @abc.abstractmethod
    async def restore_checkpoint(self, checkpoint_id: str, path: str) -> None:
        """Put the checkpoint's content back at ``path``."""

    @abc.abstractmethod
    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        """Drop one checkpoint of ``path``."""
