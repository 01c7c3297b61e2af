"""GET /api/contents: models, listings, formats, hashes and the 400s of bad parameters."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import httpx

from carme.contents.models import HASH_BESIDE_BYTES

from .conftest import json_of, notebook, write_notebook

MODEL_KEYS = {"name", "path", "type", "writable", "created", "last_modified", "mimetype", "size", "content",
              "format", "hash", "hash_algorithm"}


def test_root_listing_has_full_models(client: httpx.Client, root: Path) -> None:
    (root / "a.txt").write_text("hello")
    (root / "sub").mkdir()
    write_notebook(root / "n.ipynb", notebook("1+1"))
    response = client.get("/api/contents", params={"content": "1", "hash": "0"})
    assert response.status_code == 200
    assert "last-modified" in response.headers and "location" not in response.headers
    body = json_of(response)
    assert set(body) == MODEL_KEYS
    assert (body["type"], body["path"], body["name"], body["format"], body["size"]) == ("directory", "", "", "json", None)
    children = {c["name"]: c for c in body["content"]}
    assert set(children) == {"a.txt", "sub", "n.ipynb"}
    for child in children.values():
        assert set(child) == MODEL_KEYS
        assert child["content"] is None and child["format"] is None and child["hash"] is None
        assert child["last_modified"].endswith("Z") and child["created"].endswith("Z")
    assert children["a.txt"]["type"] == "file" and children["a.txt"]["mimetype"] == "text/plain"
    assert children["a.txt"]["size"] == 5 and children["a.txt"]["writable"] is True
    assert children["sub"]["type"] == "directory" and children["sub"]["size"] is None
    assert children["n.ipynb"]["type"] == "notebook" and children["n.ipynb"]["mimetype"] is None


def test_listing_skips_hidden_globs_and_special_files(client: httpx.Client, root: Path) -> None:
    for name in (".hidden", "x.pyc", "backup~", "ok.py"):
        (root / name).write_text("x")
    (root / "__pycache__").mkdir()
    os.mkfifo(root / "pipe")
    (root / "broken").symlink_to(root / "missing")
    names = {c["name"] for c in client.get("/api/contents").json()["content"]}
    assert names == {"ok.py"}


def test_trailing_slash_and_unknown_query_keys(client: httpx.Client, root: Path) -> None:
    (root / "d").mkdir()
    (root / "d" / "f.txt").write_text("x")
    a = client.get("/api/contents/d/?1795304638802&contentProviderId=undefined")
    b = client.get("/api/contents/d")
    assert a.status_code == b.status_code == 200
    assert a.json()["path"] == b.json()["path"] == "d"
    assert [c["path"] for c in a.json()["content"]] == ["d/f.txt"]
    assert client.get("/api/contents/?content=1").json()["path"] == ""


def test_content_zero_and_hash(client: httpx.Client, root: Path) -> None:
    (root / "a.txt").write_bytes(b"hello")
    body = client.get("/api/contents/a.txt", params={"content": "0", "hash": "1"}).json()
    assert body["content"] is None and body["format"] is None
    assert body["hash"] == hashlib.sha256(b"hello").hexdigest() and body["hash_algorithm"] == "sha256"
    body = client.get("/api/contents/a.txt").json()
    assert (body["content"], body["format"], body["hash"]) == ("hello", "text", None)


def test_binary_file_is_base64(client: httpx.Client, root: Path) -> None:
    data = bytes(range(256)) * 4
    (root / "blob.bin").write_bytes(data)
    body = client.get("/api/contents/blob.bin").json()
    assert body["format"] == "base64" and body["mimetype"] == "application/octet-stream"
    assert base64.b64decode(body["content"]) == data
    response = client.get("/api/contents/blob.bin", params={"format": "text"})
    assert response.status_code == 400 and response.json()["reason"] == "bad format"
    forced = client.get("/api/contents/blob.bin", params={"format": "base64"})
    assert base64.b64decode(forced.json()["content"]) == data


def test_text_file_as_base64(client: httpx.Client, root: Path) -> None:
    (root / "a.txt").write_text("héllo")
    body = client.get("/api/contents/a.txt", params={"format": "base64"}).json()
    assert body["format"] == "base64" and base64.b64decode(body["content"]).decode() == "héllo"


def test_bad_query_values_are_400(client: httpx.Client, root: Path) -> None:
    (root / "a.txt").write_text("x")
    for params, word in (({"format": "yaml"}, "Format"), ({"content": "2"}, "content"), ({"hash": "yes"}, "hash")):
        response = client.get("/api/contents/a.txt", params=params)
        assert response.status_code == 400, params
        assert word in response.json()["message"]


def test_type_mismatches(client: httpx.Client, root: Path) -> None:
    (root / "d").mkdir()
    (root / "a.txt").write_text("x")
    response = client.get("/api/contents/d", params={"type": "file"})
    assert response.status_code == 400 and response.json()["reason"] == "bad type"
    response = client.get("/api/contents/a.txt", params={"type": "directory"})
    assert response.status_code == 400 and response.json()["reason"] == "bad type"
    # An unknown type falls back to file, as in jupyter_server.
    assert client.get("/api/contents/a.txt", params={"type": "banana"}).json()["type"] == "file"


def test_notebook_model(client: httpx.Client, root: Path) -> None:
    nb = notebook("a = 1\nb = 2", outputs=[{"output_type": "stream", "name": "stdout", "text": "x\ny\n"}])
    write_notebook(root / "n.ipynb", nb)
    response = client.get("/api/contents/n.ipynb", params={"type": "notebook", "content": "1", "hash": "1"})
    assert response.status_code == 200
    body = response.json()
    assert body["type"] == "notebook" and body["format"] == "json" and body["mimetype"] is None
    cell = body["content"]["cells"][0]
    assert cell["source"] == "a = 1\nb = 2"  # lines joined back, as nbformat.reads does
    assert cell["outputs"][0]["text"] == "x\ny\n"
    assert "message" not in body
    assert body["hash"] == hashlib.sha256((root / "n.ipynb").read_bytes()).hexdigest()
    # The same file as a plain file, when asked.
    assert client.get("/api/contents/n.ipynb", params={"type": "file"}).json()["format"] == "text"


def test_big_file_hash_made_beside_the_parse(client: httpx.Client, root: Path) -> None:
    """From HASH_BESIDE_BYTES on, the hash is made on a thread of its own while the content is
    parsed: it is still the hash of exactly the bytes read, for a notebook and a text file."""
    nb = notebook("x = 1", outputs=[{"output_type": "stream", "name": "stdout",
                                     "text": "y" * (HASH_BESIDE_BYTES + 1000)}])
    write_notebook(root / "big.ipynb", nb)
    (root / "big.txt").write_text("z" * (HASH_BESIDE_BYTES + 7))
    for name, kind in (("big.ipynb", "notebook"), ("big.txt", "file")):
        body = client.get(f"/api/contents/{name}", params={"type": kind, "content": "1", "hash": "1"}).json()
        assert body["hash"] == hashlib.sha256((root / name).read_bytes()).hexdigest()
        assert body["hash_algorithm"] == "sha256"
    body = client.get("/api/contents/big.ipynb", params={"content": "1", "hash": "1"}).json()
    assert body["content"]["cells"][0]["outputs"][0]["text"].startswith("yyy")


def test_invalid_notebook_opens_with_message(client: httpx.Client, root: Path) -> None:
    (root / "bad.ipynb").write_text('{"cells": [{"cell_type": "code"}], "metadata": {}, "nbformat": 4, '
                                    '"nbformat_minor": 5}')
    body = client.get("/api/contents/bad.ipynb").json()
    assert body["message"].startswith("Notebook validation failed")
    assert body["content"]["cells"] == [{"cell_type": "code"}]


def test_unreadable_notebook_is_400(client: httpx.Client, root: Path) -> None:
    (root / "junk.ipynb").write_text("{not json")
    response = client.get("/api/contents/junk.ipynb")
    assert response.status_code == 400 and "Unreadable Notebook" in response.json()["message"]
    (root / "plain.txt").write_text("hello")
    assert client.get("/api/contents/plain.txt", params={"type": "notebook"}).status_code == 400


def test_old_notebook_is_converted_to_v4(client: httpx.Client, root: Path) -> None:
    v3 = {"metadata": {"name": ""}, "nbformat": 3, "nbformat_minor": 0,
          "worksheets": [{"cells": [{"cell_type": "code", "input": "1+1", "language": "python",
                                     "metadata": {}, "outputs": [], "collapsed": False}], "metadata": {}}]}
    import json

    (root / "old.ipynb").write_text(json.dumps(v3))
    body = client.get("/api/contents/old.ipynb").json()
    assert body["content"]["nbformat"] == 4 and body["content"]["cells"][0]["source"] == "1+1"


def test_missing_is_404_json(client: httpx.Client) -> None:
    response = client.get("/api/contents/nope.txt")
    assert response.status_code == 404
    assert "nope.txt" in json_of(response)["message"]
    assert client.get("/api/contents/nope/deeper").status_code == 404


def test_non_file_is_400(client: httpx.Client, root: Path) -> None:
    os.mkfifo(root / "pipe")
    response = client.get("/api/contents/pipe")  # must not block reading a FIFO
    assert response.status_code == 400 and "non-file" in response.json()["message"]


def test_large_listing_is_complete(client: httpx.Client, root: Path) -> None:
    for i in range(500):
        (root / f"f{i:04}.txt").write_text(str(i))
    body = client.get("/api/contents").json()
    assert sorted(c["name"] for c in body["content"]) == [f"f{i:04}.txt" for i in range(500)]
    assert {c["size"] for c in body["content"] if c["name"] == "f0123.txt"} == {3}


def test_unauthenticated_is_403(anon: httpx.Client, root: Path) -> None:
    (root / "a.txt").write_text("secret")
    for method in ("GET", "PUT", "POST", "PATCH", "DELETE"):
        response = anon.request(method, "/api/contents/a.txt")
        assert response.status_code == 403, method
        assert "secret" not in response.text
    assert anon.get("/files/a.txt").status_code in (302, 403)
    assert (root / "a.txt").read_text() == "secret"
