"""Notebook bytes <-> dict, byte-compatible with nbformat and much faster.

Reading parses with orjson, rejoins split lines and strips transient keys exactly as
``nbformat.reads(..., as_version=4)`` does, and validates with nbformat's compiled
(fastjsonschema) validator instead of building NotebookNode trees. Writing produces the bytes
``nbformat.write`` would (``indent=1``, sorted keys, ``ensure_ascii=False``, lines split,
trailing newline) from orjson output. Anything unusual (other major versions, NaN, huge
integers) falls back to nbformat itself. All of this is CPU work: call it in a thread.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from typing import Any

import orjson

from ..errors import ApiError

_SPLIT_MIMES = {"application/javascript", "image/svg+xml"}
_BIG_STRING = 4096
# orjson writes floats below 1e-4 differently from Python's repr (0.00001 vs 1e-05,
# 1e-7 vs 1e-07); such tokens are rewritten on the (rare) lines that hold one.
_FLOAT_LINE = re.compile(
    rb'(?m)^( *(?:"(?:[^"\\\n]|\\.)*": )?)(-?[0-9][0-9.]*(?:e-?[0-9]+)?)(,?)$'
)


class UnreadableNotebook(ApiError):
    def __init__(self, path: str, detail: str) -> None:
        super().__init__(400, f"Unreadable Notebook: {path} {detail}", "Bad Request")


def _is_json_mime(mime: str) -> bool:
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


def _each_bundle(nb: dict[str, Any]) -> Any:
    """Yield (kind, item, depth) for every cell and the mimebundles/streams nbformat splits and
    joins; ``depth`` is the indentation of the item's keys in a file written with indent=1."""
    cells = nb.get("cells")
    if not isinstance(cells, list):
        return
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        yield "cell", cell, 3
        attachments = cell.get("attachments")
        if isinstance(attachments, dict):
            for bundle in attachments.values():
                if isinstance(bundle, dict):
                    yield "bundle", bundle, 5
        outputs = cell.get("outputs") if cell.get("cell_type") == "code" else None
        if isinstance(outputs, list):
            for output in outputs:
                if not isinstance(output, dict):
                    continue
                kind = output.get("output_type")
                if kind in ("execute_result", "display_data"):
                    data = output.get("data")
                    if isinstance(data, dict):
                        yield "bundle", data, 6
                elif kind:
                    yield "stream", output, 5


def rejoin_lines(nb: dict[str, Any]) -> None:
    """In place: multi-line strings stored as lists of lines become strings (nbformat's rule)."""
    for kind, item, _depth in _each_bundle(nb):
        if kind == "cell":
            if isinstance(item.get("source"), list):
                item["source"] = "".join(item["source"])
        elif kind == "bundle":
            for key, value in item.items():
                if isinstance(value, list) and not _is_json_mime(key) and all(isinstance(v, str) for v in value):
                    item[key] = "".join(value)
        elif isinstance(item.get("text"), list):
            item["text"] = "".join(item["text"])


def split_lines(nb: dict[str, Any]) -> None:
    """In place: text is stored as lists of lines, for line-based diffs (nbformat's rule)."""
    for kind, item, _depth in _each_bundle(nb):
        if kind == "cell":
            if isinstance(item.get("source"), str):
                item["source"] = item["source"].splitlines(True)
        elif kind == "bundle":
            for key, value in item.items():
                if isinstance(value, str) and (key.startswith("text/") or key in _SPLIT_MIMES):
                    item[key] = value.splitlines(True)
        elif item.get("output_type") == "stream" and isinstance(item.get("text"), str):
            item["text"] = item["text"].splitlines(True)


def strip_transient(nb: dict[str, Any]) -> None:
    """In place: drop values never stored in files (the trust flags, the signature, ...)."""
    metadata = nb.get("metadata")
    if isinstance(metadata, dict):
        for key in ("orig_nbformat", "orig_nbformat_minor", "signature"):
            metadata.pop(key, None)
    for kind, cell, _depth in _each_bundle(nb):
        if kind == "cell" and isinstance(cell.get("metadata"), dict):
            cell["metadata"].pop("trusted", None)


def validation_message(nb: Any) -> str | None:
    """None if ``nb`` is a valid notebook, else the message jupyter_server puts in the model."""
    if not isinstance(nb, dict):
        return "Notebook validation failed: the notebook is not a JSON object"
    major, minor = nb.get("nbformat"), nb.get("nbformat_minor")
    if not isinstance(major, int) or not isinstance(minor, int):
        return "Notebook validation failed: nbformat and nbformat_minor must be integers"
    import nbformat  # lazily: its import (jsonschema) costs an idle server ~6 MB
    from nbformat.validator import get_validator

    validator = get_validator(version=major, version_minor=minor)
    if validator is None:
        return f"Notebook validation failed: no schema for validating v{major} notebooks"
    try:
        validator.validate(nb)
    except nbformat.ValidationError as exc:
        return f"Notebook validation failed: {exc}"
    return None


def parse(data: bytes, path: str, *, validate: bool = True,
          loaded: Callable[[dict[str, Any]], None] | None = None) -> tuple[dict[str, Any], str | None]:
    """Notebook bytes -> (notebook as nbformat v4 dict, validation message or None).

    A file that is not JSON, or not a notebook nbformat can read, is a 400 ``Unreadable Notebook``.
    ``validate=False`` skips the schema check of a v4 notebook (the message is then None).
    ``loaded(nb)`` is called with a v4 notebook as soon as it is read, before its validation: work
    that only reads it (the trust check) can start beside the validation in another thread.
    """
    try:
        nb = orjson.loads(data)
    except orjson.JSONDecodeError:
        nb = None  # NaN/Infinity or not UTF-8 or not JSON: let nbformat decide
    if isinstance(nb, dict) and nb.get("nbformat") == 4:
        rejoin_lines(nb)
        strip_transient(nb)
        if loaded is not None:
            loaded(nb)
        return nb, validation_message(nb) if validate else None
    return _parse_with_nbformat(data, path)


def _parse_with_nbformat(data: bytes, path: str) -> tuple[dict[str, Any], str | None]:
    import nbformat

    captured: dict[str, Any] = {}
    try:
        text = data.decode("utf-8")
        nb = nbformat.reads(text, as_version=4, capture_validation_error=captured)
    except Exception as exc:  # nbformat raises many kinds for bad input
        raise UnreadableNotebook(path, repr(exc)) from None
    error = captured.get("ValidationError")
    return nb, (f"Notebook validation failed: {error}" if error is not None else None)


def _reindent(data: bytes) -> bytes:
    """orjson's 2-space indentation -> nbformat's 1-space, in C-speed passes.

    Strings never hold a raw newline in JSON, so every ``\\n`` + spaces is indentation. Deepest
    level first, each level is rewritten with a placeholder byte (control characters are always
    escaped inside JSON strings) so no line is shortened twice.
    """
    depth = 1
    while b"\n" + b"  " * (depth + 1) in data:
        depth += 1
    for level in range(depth, 0, -1):
        data = data.replace(b"\n" + b"  " * level, b"\n" + b"\x01" * level)
    return data.replace(b"\x01", b" ")


def _fix_float(match: re.Match[bytes]) -> bytes:
    token = match.group(2)
    if b"." not in token and b"e" not in token:
        return match.group(0)
    return match.group(1) + repr(float(token)).encode() + match.group(3)


# What str.splitlines splits on besides "\n" (the last three are not ASCII), and the backslash,
# whose JSON escape could end in "n".
_ASCII_NOT_PLAIN = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\\")
_WIDE_BREAKS = ("\x85", "\u2028", "\u2029")


def _plain_lines(text: str) -> bool:
    """Lines end at "\\n" only, and no JSON escape of the text but the newline's ends in "n"."""
    if any(c in text for c in _ASCII_NOT_PLAIN):
        return False
    return text.isascii() or not any(c in text for c in _WIDE_BREAKS)


def _lines_json(text: str, depth: int) -> bytes:
    """``text`` as nbformat writes a split multi-line string whose key is indented ``depth``."""
    if not text:
        return b"[]"
    inner = b"\n" + b" " * (depth + 1)
    if _plain_lines(text):
        # Cut the encoded string at its "\\n"s: twice as fast as splitting the text first.
        body = (b'\\n",' + inner + b'"').join(orjson.dumps(text).split(b"\\n"))
        if text.endswith("\n"):
            body = body[:-len(inner) - 3]  # the empty string after the last newline, and its comma
        return b"[" + inner + body + b"\n" + b" " * depth + b"]"
    body = orjson.dumps(text.splitlines(True), option=orjson.OPT_INDENT_2)  # flat: only elements indent
    return body[:-2].replace(b"\n  ", inner) + b"\n" + b" " * depth + b"]"


def _set_aside(nb: dict[str, Any], marker: str, aside: list[bytes]) -> None:
    """Replace what nbformat splits into lines, and long unsplit strings (base64 images), by
    numbered markers; return their final JSON. They are nearly all of a notebook's bytes and
    their layout is known, so :func:`dumps` reindents only the small rest."""

    def keep(data: bytes) -> str:
        aside.append(data)
        return f"{marker}{len(aside) - 1}"

    for kind, item, depth in _each_bundle(nb):
        if kind == "cell":
            if isinstance(item.get("source"), str):
                item["source"] = keep(_lines_json(item["source"], depth))
        elif kind == "bundle":
            for key, value in item.items():
                if not isinstance(value, str):
                    continue
                if key.startswith("text/") or key in _SPLIT_MIMES:
                    item[key] = keep(_lines_json(value, depth))
                elif len(value) > _BIG_STRING:
                    item[key] = keep(orjson.dumps(value))
        elif item.get("output_type") == "stream" and isinstance(item.get("text"), str):
            item["text"] = keep(_lines_json(item["text"], depth))


def dumps(nb: dict[str, Any]) -> bytes:
    """The exact bytes nbformat writes for ``nb`` (a v4 dict). Mutates ``nb`` (splits lines,
    strips transient keys): pass a notebook you own."""
    strip_transient(nb)
    marker = f"CARME{secrets.token_hex(8)}_"
    # Keys sort as nbformat sorts them whatever their content: markers are plain strings.
    aside: list[bytes] = []
    try:
        _set_aside(nb, marker, aside)
        data = orjson.dumps(nb, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits, lone surrogates: the stdlib encoder copes
        return _dumps_stdlib(nb, marker, aside)
    data = _reindent(data)
    if b"0.0000" in data or b"e-" in data:
        data = _FLOAT_LINE.sub(_fix_float, data)
    if aside:
        pieces = data.split(f'"{marker}'.encode())
        out = [pieces[0]]
        for piece in pieces[1:]:
            index, _, rest = piece.partition(b'"')
            out.append(aside[int(index)])
            out.append(rest)
        data = b"".join(out)
    return data + b"\n"


def _dumps_stdlib(nb: dict[str, Any], marker: str, aside: list[bytes]) -> bytes:
    """The slow path: put the set-aside values back (as nbformat's split) and use ``json``."""
    for _kind, item, _depth in _each_bundle(nb):
        for key, value in list(item.items()):
            if isinstance(value, str) and value.startswith(marker):
                item[key] = orjson.loads(aside[int(value[len(marker):])])
    split_lines(nb)  # whatever was not set aside yet
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False, separators=(",", ": "))
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(400, f"the notebook holds text that cannot be written as UTF-8: {exc}", "Bad Request") from None


def serialize(content: Any, path: str, *, validate: bool = True) -> tuple[bytes, str | None]:
    """A notebook from a save request -> (file bytes, validation message or None).

    Invalid notebooks are still saved, with a message (as jupyter_server does); content that is
    not a notebook at all is a 400. ``validate=False``: no message (the caller validates).
    """
    if not isinstance(content, dict):
        raise ApiError(400, f"Notebook content of {path} must be a JSON object, not {type(content).__name__}",
                       "Bad Request")
    message = validation_message(content) if validate else None
    if content.get("nbformat") == 4:
        return dumps(own_copy(content)), message
    import nbformat

    try:
        node = nbformat.from_dict(content)
        text = nbformat.writes(node, version=nbformat.NO_CONVERT)
    except Exception as exc:
        raise ApiError(400, f"Cannot save {path} as a notebook: {exc!r}", "Bad Request") from None
    return (text if text.endswith("\n") else text + "\n").encode("utf-8"), message


def own_copy(nb: dict[str, Any]) -> dict[str, Any]:
    """A copy of every container :func:`dumps` changes, sharing the (immutable) strings: the
    caller's notebook stays as it was, at a fraction of a deep copy's cost."""
    def copied(value: Any) -> Any:
        return dict(value) if isinstance(value, dict) else value

    nb = dict(nb)
    if "metadata" in nb:
        nb["metadata"] = copied(nb["metadata"])
    if isinstance(nb.get("cells"), list):
        cells = nb["cells"] = [copied(cell) for cell in nb["cells"]]
        for cell in cells:
            if not isinstance(cell, dict):
                continue
            if "metadata" in cell:
                cell["metadata"] = copied(cell["metadata"])
            if isinstance(cell.get("attachments"), dict):
                cell["attachments"] = {k: copied(v) for k, v in cell["attachments"].items()}
            if isinstance(cell.get("outputs"), list):
                outputs = cell["outputs"] = [copied(output) for output in cell["outputs"]]
                for output in outputs:
                    if isinstance(output, dict) and isinstance(output.get("data"), dict):
                        output["data"] = dict(output["data"])
    return nb


def new_notebook() -> dict[str, Any]:
    """The empty notebook jupyter_server creates (nbformat 4.5)."""
    return {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
