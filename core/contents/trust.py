"""Notebook trust, compatible with jupyter_server: the same secret and signature database.

A notebook saved while all its code cells are trusted is signed: an HMAC of its content is
stored in ``nbsignatures.db`` in the Jupyter data directory (keyed by ``notebook_secret``, which is
created if missing). When it is opened again unchanged, its code cells get
``metadata.trusted = true`` and JupyterLab renders their HTML/JavaScript outputs; other notebooks
open untrusted. A notebook signed by jupyter_server is trusted by carme and the other way round.

The signature database is SQLite, whose connections belong to one thread: every operation
runs on this object's single worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..secretfile import read_or_create_secret

log = logging.getLogger("carme.contents.trust")

ALGORITHM = "sha256"
_UNSAFE_OUTPUTS = ("execute_result", "display_data")
_SAFE_KEYS = {"output_type", "execution_count", "metadata"}


def _code_cells(nb: dict[str, Any]) -> list[dict[str, Any]]:
    cells = nb.get("cells")
    return [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"] if isinstance(cells, list) else []


def _cell_trusted(cell: dict[str, Any]) -> bool:
    """nbformat's rule: explicitly trusted (the flag is removed), or no rich output to distrust."""
    metadata = cell.get("metadata")
    if isinstance(metadata, dict) and metadata.pop("trusted", False):
        return True
    for output in cell.get("outputs") or []:
        if isinstance(output, dict) and output.get("output_type") in _UNSAFE_OUTPUTS and set(output) - _SAFE_KEYS:
            return False
    return True


# A string this long is a piece of its own; shorter ones are gathered into one buffer. The pieces
# are joined on the notary's thread, not the reader's: for a 20 MB notebook that copy is 19 MB of
# fresh memory (~3-15 ms), and the reader is building the collab document meanwhile.
_PIECE = 4096


def _walk(obj: Any, small: bytearray, pieces: list[bytes]) -> None:
    """The byte stream nbformat's ``yield_everything`` hashes (sorted keys, str() of scalars), in
    order: short pieces appended to ``small``, long strings' bytes to ``pieces`` after it."""
    if isinstance(obj, dict):
        for key in sorted(obj):
            small += key.encode()
            _walk(obj[key], small, pieces)
    elif isinstance(obj, list | tuple):
        for item in obj:
            _walk(item, small, pieces)
    elif isinstance(obj, str):
        if len(obj) < _PIECE:
            small += obj.encode("utf8")
            return
        if small:
            pieces.append(bytes(small))
            small.clear()
        pieces.append(obj.encode("utf8"))
    else:
        small += str(obj).encode("utf8")


def _signed_pieces(nb: dict[str, Any]) -> list[bytes]:
    """What nbformat's signature hashes, in pieces: everything but ``metadata.signature`` (``nb``
    is only read)."""
    small, pieces = bytearray(), []
    for key in sorted(nb):
        value = nb[key]
        if key == "metadata" and isinstance(value, dict) and "signature" in value:
            value = {k: v for k, v in value.items() if k != "signature"}
        small += key.encode()
        _walk(value, small, pieces)
    if small:
        pieces.append(bytes(small))
    return pieces


class Notary:
    """Signs trusted notebooks and marks the cells of signed ones (see the module docstring)."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = Path(data_dir)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="carme-trust")
        self._secret: bytes | None = None
        self._store: Any = None
        self._broken = False

    async def _call(self, func: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    def close(self) -> None:
        def shut() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        with contextlib.suppress(RuntimeError):
            self._executor.submit(shut).result()
        self._executor.shutdown(wait=True)

    def _ready(self) -> bool:
        """Open the secret and the database on first use; on failure trust is off (logged once)."""
        if self._store is not None:
            return True
        if self._broken:
            return False
        try:
            from nbformat.sign import SQLiteSignatureStore

            self.data_dir.mkdir(parents=True, exist_ok=True)
            # nbformat's format: base64 of 1024 random bytes, shared with jupyter_server's notary.
            self._secret = read_or_create_secret(self.data_dir / "notebook_secret",
                                                 lambda: base64.encodebytes(os.urandom(1024)))
            self._store = SQLiteSignatureStore(str(self.data_dir / "nbsignatures.db"))
        except Exception as exc:
            self._broken = True
            log.warning("notebook trust is off: cannot use %s (%s)", self.data_dir, exc)
            return False
        return True

    def _signature(self, pieces: list[bytes]) -> str:
        """The HMAC of :func:`_signed_pieces`. Joined first, then hashed in one update: both let
        other threads run while they copy or hash a big buffer, and this thread needs the GIL back
        only a few times (one update per piece waited for it ~1000 times behind a document build
        that holds it, and finished ~15 ms after the build instead of during it)."""
        assert self._secret is not None
        return hmac.new(self._secret, b"".join(pieces), ALGORITHM).hexdigest()

    def _signed(self, pieces: list[bytes]) -> bool:
        return bool(self._ready() and self._store.check_signature(self._signature(pieces), ALGORITHM))

    @staticmethod
    def _set_trusted(nb: dict[str, Any], trusted: bool) -> None:
        for cell in _code_cells(nb):
            if isinstance(cell.get("metadata"), dict):
                cell["metadata"]["trusted"] = trusted

    def _sign_if_trusted(self, nb: dict[str, Any], force: bool) -> bool:
        if nb.get("nbformat") != 4 or not self._ready():
            return False
        cells = _code_cells(nb)
        trusted = all([_cell_trusted(cell) for cell in cells])  # every cell, so every flag is removed
        if trusted or force:
            self._store.store_signature(self._signature(_signed_pieces(nb)), ALGORITHM)
        return trusted or force

    def check_soon(self, nb: dict[str, Any]) -> Future[bool]:
        """Start finding out whether ``nb`` is signed; callable from any thread. What is hashed is
        gathered here, in the caller's thread; the HMAC and the lookup run on this notary's thread,
        so a reader validates the notebook meanwhile. Pass the result to :meth:`mark_cells`."""
        if nb.get("nbformat") != 4:
            unsigned: Future[bool] = Future()
            unsigned.set_result(False)
            return unsigned
        return self._executor.submit(self._signed, _signed_pieces(nb))

    def mark_cells(self, nb: dict[str, Any], checked: Future[bool] | None = None) -> bool:
        """Set ``metadata.trusted`` on every code cell of a just-read notebook; True if signed.
        ``checked``: the :meth:`check_soon` of ``nb``, when it was started. Blocks: call it from
        a worker thread, never on the event loop."""
        trusted = bool((checked or self.check_soon(nb)).result())
        self._set_trusted(nb, trusted)
        return trusted

    async def sign_if_trusted(self, nb: dict[str, Any], *, force: bool = False) -> bool:
        """Before a save: remove the cells' trust flags and sign if they were all trusted (or
        ``force``, for the trust route). Returns whether the notebook was signed."""
        return bool(await self._call(self._sign_if_trusted, nb, force))
