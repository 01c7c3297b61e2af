"""Big file saves without copies of the body: one JSON string field read piece by piece.

A PUT of a 300 MB text file would otherwise be held as the body's bytes, the parsed ``content``
string and its encoded bytes at once (3.5x the body). Here the body stays the one buffer it was
received into: :func:`split_string_field` parses the small fields of the top-level object and
finds where the big string lies in the buffer, and :class:`StreamedText` decodes that string in
pieces of a few MiB as it is written (peak: the body plus one piece).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any

import orjson

# A JSON string's inner bytes, possessive so that a 300 MB string keeps no backtracking state.
_STRING = re.compile(rb'"([^"\\]*+(?:\\.[^"\\]*+)*+)"', re.DOTALL)
_SPACE = re.compile(rb"[ \t\r\n]*+")
_SCALAR = re.compile(rb"-?[0-9][0-9.eE+\-]*+|true|false|null")
PIECE = 4 * 1024 * 1024  # bytes of the body decoded at a time


class StreamedText:
    """The value of a JSON string field, left in the request body and decoded on demand.

    Iterate it for ``str`` pieces (each a whole number of characters) or call :meth:`bytes_pieces`
    for the file's bytes (UTF-8 of text, or decoded base64). Bad escapes, bad UTF-8 or bad base64
    raise ``ValueError`` naming the problem.
    """

    def __init__(self, buffer: bytearray | bytes, start: int, end: int) -> None:
        self._buffer = memoryview(buffer)
        self.start, self.end = start, end

    def __len__(self) -> int:
        """The size of the raw (still escaped) JSON text: an upper bound of the text's length."""
        return self.end - self.start

    def __iter__(self) -> Iterator[str]:
        buf, pos, end = self._buffer, self.start, self.end
        while pos < end:
            cut = min(pos + PIECE, end)
            while True:  # a cut inside an escape or a UTF-8 sequence does not decode: move it back
                try:
                    piece = orjson.loads(b'"' + bytes(buf[pos:cut]) + b'"')
                    break
                except orjson.JSONDecodeError:
                    if cut == end or cut - pos < PIECE - 16:
                        raise ValueError(f"the content string is not valid JSON near byte {cut}") from None
                    cut -= 1
            assert isinstance(piece, str)
            yield piece
            pos = cut

    def bytes_pieces(self, format: str) -> Iterator[bytes]:
        """The file's bytes: ``text`` as UTF-8, ``base64`` decoded (line breaks allowed)."""
        if format == "text":
            for piece in self:
                yield piece.encode("utf-8")
            return
        carry = b""
        for piece in self:
            data = carry + piece.encode("ascii").translate(None, b" \t\r\n")
            whole = len(data) - len(data) % 4
            carry = data[whole:]
            if whole:
                try:
                    yield base64.b64decode(data[:whole], validate=True)
                except binascii.Error as exc:
                    raise ValueError(f"bad base64: {exc}") from None
        if carry:
            raise ValueError("bad base64: its length is not a multiple of 4")


def split_string_field(buffer: bytearray | bytes, key: str) -> tuple[dict[str, Any], StreamedText] | None:
    """Parse a top-level JSON object whose ``key`` holds a string, leaving that string in place.

    Returns the other fields and the string as :class:`StreamedText`; None when the body is not
    such an object or another field is not a scalar (a notebook's content, say): parse it whole
    (which also says what is wrong with a malformed body).
    """
    try:
        return _split(buffer, key)
    except orjson.JSONDecodeError:  # a bad name or scalar (1e, "\q", bad UTF-8)
        return None


def _split(buffer: bytearray | bytes, key: str) -> tuple[dict[str, Any], StreamedText] | None:
    buf = memoryview(buffer)
    fields: dict[str, Any] = {}
    found: StreamedText | None = None
    pos = _skip(buffer, 0)
    if buf[pos:pos + 1] != b"{":
        return None
    pos = _skip(buffer, pos + 1)
    while True:
        name = _STRING.match(buffer, pos)
        if name is None:
            return None
        field = orjson.loads(name.group(0))
        pos = _skip(buffer, name.end())
        if buf[pos:pos + 1] != b":":
            return None
        pos = _skip(buffer, pos + 1)
        string = _STRING.match(buffer, pos)
        if string is not None and field == key and found is None:
            found = StreamedText(buffer, string.start(1), string.end(1))
            pos = string.end()
        else:
            value = string or _SCALAR.match(buffer, pos)
            if value is None:
                return None
            fields[field] = orjson.loads(value.group(0))
            pos = value.end()
        pos = _skip(buffer, pos)
        if buf[pos:pos + 1] == b",":
            pos = _skip(buffer, pos + 1)
            continue
        if buf[pos:pos + 1] == b"}" and _skip(buffer, pos + 1) == len(buffer) and found is not None:
            fields.pop(key, None)
            return fields, found
        return None


def _skip(buffer: bytearray | bytes, pos: int) -> int:
    match = _SPACE.match(buffer, pos)
    assert match is not None
    return match.end()
