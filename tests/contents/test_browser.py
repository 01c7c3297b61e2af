"""The real JupyterLab frontend in Chromium against the contents API: a chunked upload."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tests.browser import browsing, open_lab
from tests.serving import Served


def test_chunked_upload_from_the_file_browser(chromium: Any, lab_server: Served, root: Path,
                                              tmp_path: Path) -> None:
    """JupyterLab sends files over 15 MiB in 1 MiB chunks (chunk=1..n, -1); the file appears
    whole, byte for byte, and no temporary file is left behind."""
    data = os.urandom(16 * 1024 * 1024 + 12345)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    with browsing(chromium, lab_server, "/", "contents-upload") as flow:
        page = flow.page
        puts: list[str] = []
        page.on("request", lambda r: r.method == "PUT" and "/api/contents/big.bin" in r.url and puts.append(r.url))
        open_lab(flow)
        with page.expect_file_chooser() as chooser:
            page.locator(".jp-FileBrowser [data-jp-item-name='uploader'] jp-button").click()
        chooser.value.set_files(str(source))
        page.locator(".jp-Dialog .jp-mod-accept", has_text="Upload").click()  # "Large file size warning"
        page.locator(".jp-DirListing-item[title^='Name: big.bin']").wait_for()
        deadline = time.monotonic() + 60
        while (not (root / "big.bin").exists() or (root / "big.bin").stat().st_size < len(data)) \
                and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        flow.shot("uploaded")
    assert len(puts) == 17  # 16 chunks of 1 MiB and the last one
    assert (root / "big.bin").read_bytes() == data
    assert sorted(p.name for p in root.iterdir() if p.name != ".ipynb_checkpoints") == ["big.bin"]
