"""carme.contents.streamed: the big string of a JSON body found in place and decoded in pieces
(pieces of 37 bytes here, so that cuts fall inside escapes, surrogate pairs and UTF-8 sequences)."""

from __future__ import annotations

import base64
import json
import random

import pytest

from carme.contents import streamed
from carme.contents.streamed import split_string_field

ALPHABET = ["a", '"', "\\", "\n", "\t", "é", "漢", "😀", "\x01", "/", " "]


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streamed, "PIECE", 37)


@pytest.mark.parametrize("ensure_ascii", [False, True])
def test_text_is_exact_across_piece_cuts(ensure_ascii: bool) -> None:
    rng = random.Random(7)
    for _ in range(300):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 400)))
        body = bytearray(json.dumps({"type": "file", "content": text, "path": "x/y", "chunk": None, "n": -1.5},
                                    ensure_ascii=ensure_ascii).encode())
        split = split_string_field(body, "content")
        assert split is not None
        fields, content = split
        assert fields == {"type": "file", "path": "x/y", "chunk": None, "n": -1.5}
        assert "".join(content) == text
        assert b"".join(content.bytes_pieces("text")) == text.encode()


def test_base64_with_line_breaks() -> None:
    rng = random.Random(3)
    for _ in range(100):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
        body = json.dumps({"content": base64.encodebytes(data).decode(), "format": "base64"}).encode()
        split = split_string_field(body, "content")
        assert split is not None
        assert b"".join(split[1].bytes_pieces("base64")) == data


@pytest.mark.parametrize("body", [b'{"content": {"cells": []}}', b"[1]", b'{"content": "x" "y"}', b'{"content": "x"',
                                  b'{"a": 1}', b'{"content": "x"} x', b'{"content": 1}', b"",
                                  b'{"content": "x", "n": 1e}', b'{"content": "x", "a\\q": 1}',
                                  b'{"content": "x", "a": "\xff"}'])
def test_other_bodies_are_left_to_the_json_parser(body: bytes) -> None:
    assert split_string_field(body, "content") is None


@pytest.mark.parametrize("content, format", [("ab\\q" + "c" * 100, "text"), ("QUJD!" * 30, "base64"), ("QUJDR", "base64")])
def test_bad_content_is_a_value_error(content: str, format: str) -> None:
    split = split_string_field(b'{"content": "' + content.encode() + b'"}', "content")
    assert split is not None
    with pytest.raises(ValueError):
        b"".join(split[1].bytes_pieces(format))
