"""carme.contents.notebooks writes the bytes nbformat writes and reads what nbformat reads."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carme.contents import notebooks
from carme.errors import ApiError


def rich_notebook() -> dict[str, Any]:
    random.seed(7)
    floats = [random.uniform(-1, 1) * 10.0 ** random.randint(-12, 20) for _ in range(50)]
    return {
        "cells": [
            {"cell_type": "markdown", "id": "m1", "metadata": {"tags": ["a"]}, "source": "# Tïtle\n\ntext ✓",
             "attachments": {"x.png": {"image/png": "iVBORw0KGgo=", "text/plain": "a\nb"}}},
            {"cell_type": "code", "execution_count": 3, "id": "c1",
             "metadata": {"trusted": True, "scrolled": False, "deep": {"a": {"b": {"c": {"d": [1, [2, [3]]]}}}}},
             "source": "for i in range(3):\n    print(i)\n",
             "outputs": [
                 {"output_type": "stream", "name": "stdout", "text": "0\n1\n2\n"},
                 {"output_type": "execute_result", "execution_count": 3, "metadata": {},
                  "data": {"text/plain": "42", "text/html": "<b>42</b>\n<i>x</i>",
                           "application/json": {"k": [1, 2.5, 1e-05, 3e-07]},
                           "application/vnd.custom+json": {"z": 1}, "image/svg+xml": "<svg>\n</svg>"}},
                 {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["l1", "l2"]},
             ]},
            {"cell_type": "raw", "id": "r1", "metadata": {}, "source": ""},
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "floats": floats, "ctrl": "tab\tnul\u0000 \u2028 \U0001f600", "big": 2 ** 62,
                     "signature": "sha256:x", "orig_nbformat": 3},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_dumps_matches_nbformat_byte_for_byte() -> None:
    nb = rich_notebook()
    expected = nbformat.writes(nbformat.from_dict(copy.deepcopy(nb))) + "\n"
    assert notebooks.dumps(copy.deepcopy(nb)).decode("utf-8") == expected


@pytest.mark.parametrize("value", [2 ** 70, float("1e-300"), -0.0, 1e16, 123456789012345678])
def test_dumps_edge_numbers(value: Any) -> None:
    nb = {"cells": [], "metadata": {"v": value, "l": [value]}, "nbformat": 4, "nbformat_minor": 5}
    expected = nbformat.writes(nbformat.from_dict(copy.deepcopy(nb))) + "\n"
    assert notebooks.dumps(copy.deepcopy(nb)).decode("utf-8") == expected


def test_dumps_slow_path_with_cells() -> None:
    """Numbers orjson cannot write send the whole notebook through the stdlib encoder."""
    nb = rich_notebook()
    nb["metadata"]["huge"] = 2 ** 80
    expected = nbformat.writes(nbformat.from_dict(copy.deepcopy(nb))) + "\n"
    assert notebooks.dumps(copy.deepcopy(nb)).decode("utf-8") == expected


# Line breaks str.splitlines knows, backslashes and quotes (escapes that could end in "n"), text.
MULTILINE = st.lists(st.sampled_from(["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\\", "\\n",
                                      '"', "n", "a", " ", "\t", "é", "\U0001f600", "\x01"])).map("".join)


@settings(max_examples=300, deadline=None)
@given(source=MULTILINE, text=MULTILINE, html=MULTILINE)
def test_dumps_splits_any_text_into_lines_as_nbformat(source: str, text: str, html: str) -> None:
    nb = {"cells": [{"cell_type": "code", "execution_count": 1, "id": "c", "metadata": {}, "source": source,
                     "outputs": [{"output_type": "stream", "name": "stdout", "text": text},
                                 {"output_type": "display_data", "metadata": {},
                                  "data": {"text/html": html, "text/plain": text + source}}]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    expected = nbformat.writes(nbformat.from_dict(copy.deepcopy(nb))) + "\n"
    assert notebooks.dumps(copy.deepcopy(nb)).decode("utf-8") == expected


def test_unencodable_text_is_400() -> None:
    nb = rich_notebook()
    nb["cells"][0]["source"] = "bad \ud800"
    with pytest.raises(ApiError) as info:
        notebooks.dumps(nb)
    assert info.value.status == 400


def test_parse_matches_nbformat_reads() -> None:
    nb = rich_notebook()
    data = (nbformat.writes(nbformat.from_dict(copy.deepcopy(nb))) + "\n").encode()
    ours, message = notebooks.parse(data, "n.ipynb")
    theirs = nbformat.reads(data.decode(), as_version=4)
    assert json.loads(json.dumps(ours)) == json.loads(json.dumps(theirs))
    assert message is None


def test_validation_message_for_invalid() -> None:
    nb = {"cells": [{"cell_type": "code", "source": "x"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    assert notebooks.validation_message(nb).startswith("Notebook validation failed")
    assert notebooks.validation_message({"nbformat": "4"}).startswith("Notebook validation failed")
    assert notebooks.validation_message(rich_notebook()) is None


def test_parse_without_validation() -> None:
    invalid = b'{"cells": [{"cell_type": "code"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    assert notebooks.parse(invalid, "n.ipynb")[1].startswith("Notebook validation failed")
    nb, message = notebooks.parse(invalid, "n.ipynb", validate=False)
    assert nb["cells"] == [{"cell_type": "code"}] and message is None
    with pytest.raises(ApiError) as info:  # not a notebook at all: still refused
        notebooks.parse(b'{"cells": [', "n.ipynb", validate=False)
    assert info.value.status == 400


def test_serialize_leaves_the_callers_notebook_alone() -> None:
    """Extensions save live documents through the manager: their dicts must not change."""
    nb = rich_notebook()
    before = copy.deepcopy(nb)
    data, message = notebooks.serialize(nb, "n.ipynb")
    assert nb == before
    del before["cells"][1]["metadata"]["trusted"]
    assert data.decode() == nbformat.writes(nbformat.from_dict(before)) + "\n"
    bare = {"cells": [{"cell_type": "raw", "source": "x"}], "nbformat": 4, "nbformat_minor": 5}
    data, message = notebooks.serialize(bare, "bare.ipynb")
    assert message is not None and b"metadata" not in data
