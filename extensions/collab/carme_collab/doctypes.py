"""Which jupyter_ydoc document a room holds, and how its content maps to the contents API.

Room ids are ``FORMAT:TYPE:FILE_ID`` (``json:notebook:...``, ``text:file:...``); the type picks
the document class as jupyter-collaboration does: ``notebook`` -> YNotebook, ``file`` / ``unicode``
-> YFile (text), ``blob`` -> YBlob (bytes), anything else a text document.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from jupyter_ydoc import YBlob, YFile, YNotebook, YUnicode
from jupyter_ydoc.ybasedoc import YBaseDoc
from pycrdt import Array, Doc, Map, Text


class LeanNotebook(YNotebook):
    """A YNotebook that builds cells without deep copies.

    YNotebook deep-copies every cell it inserts (it replaces a few of the cell's values by
    shared types, and the caller's dict must not change): for a 20 MB notebook that copy is
    a sixth of the build. Here only the dicts whose keys change are copied (the cell and its stream
    outputs); the rest is only read (pycrdt copies it into the document). The caller's content
    is unchanged and the cells are the same as YNotebook's (a test compares the documents).
    """

    def __init__(self, ydoc: Doc | None = None) -> None:
        super().__init__(ydoc)
        # The metadata maps of the code cells built, in order (None: some cell was built by
        # YNotebook): their ``trusted`` flags are set after the build, see :meth:`mark_trusted`.
        self._code_metadata: list[Map] | None = []

    def create_ycell(self, value: dict[str, Any]) -> Map:
        cell = dict(value)
        if "id" not in cell:
            self._code_metadata = None
            return super().create_ycell(value)  # jupyter_ydoc gives it an id (a rare old notebook)
        source = cell["source"]
        cell["source"] = Text("".join(source) if isinstance(source, list) else source)
        cell["metadata"] = Map(cell.get("metadata", {}))
        cell_type = cell["cell_type"]
        if cell_type in ("raw", "markdown"):
            if "attachments" in cell and not cell["attachments"]:
                del cell["attachments"]
        elif cell_type == "code":
            cell["outputs"] = Array([Map(_with_ytext(output)) for output in cell.get("outputs", [])])
            cell["execution_state"] = "idle"
            if self._code_metadata is not None:
                self._code_metadata.append(cell["metadata"])
        return Map(cell)

    def mark_trusted(self, trusted: bool) -> None:
        """Set ``metadata.trusted`` of every code cell (as the contents API's read of a notebook
        does), in one transaction."""
        with self.ydoc.transaction():
            if self._code_metadata is not None:  # the maps the build made: no lookup per cell
                for metadata in self._code_metadata:
                    metadata["trusted"] = trusted
                return
            for cell in self.ycells:
                if cell.get("cell_type") == "code" and isinstance(cell.get("metadata"), Map):
                    cell["metadata"]["trusted"] = trusted


def _with_ytext(output: dict[str, Any]) -> dict[str, Any]:
    """A stream output's text as a Y text (a copy of the output); other outputs as they are."""
    if output.get("output_type") != "stream":
        return output
    text = output.get("text", "")
    return {**output, "text": Text(text if isinstance(text, str) else "".join(text))}


DOC_CLASSES: dict[str, type[YBaseDoc]] = {"notebook": YNotebook, "file": YFile, "unicode": YUnicode, "blob": YBlob}
FORMATS = ("json", "text", "base64")


class BadRoomError(ValueError):
    """A room id or session request that names no valid format / type."""


@dataclass(frozen=True)
class DocKind:
    """The format and type of a room, and the conversions between its document and the disk."""

    format: str
    type: str

    @classmethod
    def of(cls, file_format: str, file_type: str) -> DocKind:
        if file_format not in FORMATS:
            raise BadRoomError(f"format {file_format!r} is not valid: expected one of {', '.join(FORMATS)}")
        if not file_type or ":" in file_type or "/" in file_type:
            raise BadRoomError(f"type {file_type!r} is not valid")
        if file_type == "notebook" and file_format != "json":
            raise BadRoomError("a notebook's format must be json")
        return cls(file_format, file_type)

    @property
    def contents_type(self) -> str:
        """The contents API type the file is read and written as."""
        return "notebook" if self.type == "notebook" else "file"

    def new_document(self, ydoc: Doc | None = None, *, lean: bool = False) -> YBaseDoc:
        """The jupyter_ydoc document of this kind on ``ydoc``; ``lean``: a notebook whose cells
        are built without deep copies (:class:`LeanNotebook`, for the first load)."""
        if lean and self.type == "notebook":
            return LeanNotebook(ydoc)
        return DOC_CLASSES.get(self.type, YFile)(ydoc)

    def from_model(self, model: dict[str, Any]) -> Any:
        """The document content of a contents model (``content=True``)."""
        content = model["content"]
        if self.type == "notebook":
            return content
        if self.type == "blob":
            return base64.b64decode(content) if model.get("format") == "base64" else content.encode()
        if isinstance(content, str) and model.get("format") == "text":
            # As jupyter-collaboration: the shared text has \n line ends (CodeMirror's).
            return content.replace("\r\n", "\n")
        return content

    def to_model(self, content: Any) -> dict[str, Any]:
        """A contents model to save ``content`` (what the document holds)."""
        if self.type == "blob":
            return {"type": "file", "format": "base64", "content": base64.b64encode(content).decode()}
        return {"type": self.contents_type, "format": self.format, "content": content}

    def read_format(self) -> str | None:
        """The ``format`` to ask the contents manager for."""
        if self.type == "notebook":
            return None
        return "base64" if self.type == "blob" else self.format
