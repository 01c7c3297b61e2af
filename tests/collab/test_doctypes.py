"""The lean notebook build (no deep copies) makes the document jupyter_ydoc's YNotebook makes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Doc

from carme_collab.doctypes import DocKind
from carme_collab.document import FirstVersion


def varied_notebook() -> dict[str, Any]:
    return {
        "cells": [
            {"cell_type": "markdown", "id": "m1", "metadata": {"tags": ["a"]}, "source": ["# T\n", "text"],
             "attachments": {}},
            {"cell_type": "markdown", "id": "m2", "metadata": {}, "source": "![x](attachment:x.png)",
             "attachments": {"x.png": {"image/png": "iVBORw0KGgo="}}},
            {"cell_type": "code", "execution_count": 3, "id": "c1",
             "metadata": {"trusted": False, "deep": {"a": [1, {"b": 2.5}]}},
             "source": "print(1)\n",
             "outputs": [
                 {"output_type": "stream", "name": "stdout", "text": ["0\n", "1\n"]},
                 {"output_type": "stream", "name": "stderr", "text": "warn\n"},
                 {"output_type": "execute_result", "execution_count": 3, "metadata": {},
                  "data": {"text/plain": "42", "application/json": {"k": [1, 2]}}},
                 {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["l1"]},
             ]},
            {"cell_type": "code", "execution_count": None, "id": "c2", "metadata": {}, "source": "", "outputs": []},
            {"cell_type": "raw", "id": "r1", "metadata": {}, "source": ""},
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_lean_build_is_ynotebooks_and_leaves_the_content_alone() -> None:
    nb = varied_notebook()
    before = copy.deepcopy(nb)
    reference = Doc(client_id=0)
    YNotebook(reference).set(copy.deepcopy(nb))

    built = Doc()
    built.apply_update(FirstVersion(DocKind.of("json", "notebook"), nb).encode())
    assert nb == before
    # Same items (state vector: client 0's clock) and the same content, shared types included.
    assert built.get_state() == reference.get_state()
    ours, theirs = YNotebook(built), YNotebook(reference)
    assert ours.get() == theirs.get()
    assert [type(c["outputs"][0]["text"]).__name__ for c in (ours.ycells[2], theirs.ycells[2])] == ["Text", "Text"]
    assert ours.ycells[0].to_py() == theirs.ycells[0].to_py()


def test_a_first_version_built_into_a_rooms_document_is_the_same_version() -> None:
    # A cold room's document (client id 0, already wrapped by the room's YNotebook) gets the items
    # a separate build makes, so the room needs no copy of them applied.
    nb, kind = varied_notebook(), DocKind.of("json", "notebook")
    separate = Doc()
    separate.apply_update(FirstVersion(kind, nb).encode())
    room_doc = Doc(client_id=0)
    kind.new_document(room_doc)
    encoded = FirstVersion(kind, nb, room_doc).encode()
    assert room_doc.get_state() == separate.get_state()
    assert YNotebook(room_doc).get() == YNotebook(separate).get()
    received = Doc()
    received.apply_update(encoded)
    assert YNotebook(received).get() == YNotebook(separate).get()


def test_a_first_version_is_built_only_into_an_empty_document_of_client_zero() -> None:
    kind = DocKind.of("json", "notebook")
    with pytest.raises(ValueError, match="client id 0"):
        FirstVersion(kind, varied_notebook(), Doc(client_id=5))
    used = Doc(client_id=0)
    FirstVersion(kind, varied_notebook(), used)
    with pytest.raises(ValueError, match="empty document"):
        FirstVersion(kind, varied_notebook(), used)
