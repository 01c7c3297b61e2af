"""Visits over HTTP and websockets: one kernel per visit, reload to the same kernel, kernels freed
after the grace period or when a page never connects, the cap with its busy page and queue, pools
of preheated kernels, and the visitor's restricted websocket to its own kernel only."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.dashboards.site import SENTINEL, cells, dashboards, gate_code, http, kernel_ids, page, write_notebook
from tests.polling import await_until, wait_until
from tests.kernels.wsclient import Client
from tests.serving import Served


def visitor_headers(served: Served, client: httpx.Client) -> dict[str, str]:
    """The cookie header of a visitor's browser, for its websocket."""
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in client.cookies.items())}


async def visitor_socket(served: Served, client: httpx.Client, kernel_id: str) -> Client:
    return await Client.open(served.ws_url, kernel_id, kernels_path="dashboards/api/kernels",
                             headers=visitor_headers(served, client))


def config_of(html: str) -> dict[str, object]:
    start = html.index('type="application/json">') + len('type="application/json">')
    return dict(json.loads(html[start:html.index("</script>", start)]))


def test_a_reload_gets_the_same_kernel_and_page_without_running_again(root: Path) -> None:
    counter = root.parent / "runs"
    write_notebook(root / "nb.ipynb", f"open({str(counter)!r}, 'a').write('x'); print('ran')")
    with dashboards(root) as served, http(served) as first, http(served) as second:
        one = first.get("dashboards/render/nb.ipynb").text
        again = first.get("dashboards/render/nb.ipynb").text
        assert config_of(again)["kernelId"] == config_of(one)["kernelId"]
        assert "ran" in cells(again)[0]
        assert counter.read_text() == "x"  # the reload was served from the visit, not run again
        other = second.get("dashboards/render/nb.ipynb").text  # another browser: another visit
        other_query = first.get("dashboards/render/nb.ipynb?x=1").text  # another query: another visit
        ids = {config_of(html)["kernelId"] for html in (one, other, other_query)}
        assert len(ids) == 3 and ids == kernel_ids(served)
        assert counter.read_text() == "xxx"


async def test_the_grace_period_frees_a_kernel_once_its_page_is_gone(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "print('hi')")
    with dashboards(root, grace_period=0.2, connect_timeout=3600) as served, http(served) as client:
        kernel_id = str(config_of(client.get("dashboards/render/nb.ipynb").text)["kernelId"])
        visit = served.app.server.services["dashboards"].visits.by_kernel[kernel_id]
        socket = await visitor_socket(served, client, kernel_id)
        await await_until(lambda: visit.sockets == 1 and visit.pages == 0, what="only the socket")
        assert visit.timer is None  # a connected page keeps its kernel, however long
        await socket.close()
        await await_until(lambda: kernel_id not in kernel_ids(served), what="the kernel to go")
        again = config_of(client.get("dashboards/render/nb.ipynb").text)["kernelId"]
        assert again != kernel_id  # after the grace period a reload gets a new kernel
        await await_until(lambda: again in kernel_ids(served), what="the new kernel")


def test_a_page_that_never_connects_frees_its_kernel(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "print('hi')")
    with dashboards(root, grace_period=3600, connect_timeout=0.2) as served, http(served) as client:
        kernel_id = config_of(client.get("dashboards/render/nb.ipynb").text)["kernelId"]
        wait_until(lambda: not kernel_ids(served), what="the never-connected kernel to go")
        assert kernel_id not in served.app.server.services["dashboards"].visits.by_kernel


def test_past_the_cap_a_visitor_gets_the_busy_page(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "print('hi')")
    with dashboards(root, max_kernels=1) as served, http(served) as first, http(served) as second:
        assert first.get("dashboards/render/nb.ipynb").status_code == 200
        busy = second.get("dashboards/render/nb.ipynb")
        assert busy.status_code == 503 and busy.headers["retry-after"]
        assert 'id="carme-busy"' in busy.text
        assert len(kernel_ids(served)) == 1
        assert first.get("dashboards/render/nb.ipynb").status_code == 200  # a reload is no new kernel


def test_the_queue_shows_the_place_and_moves_on(root: Path) -> None:
    gate = root.parent / "go"
    write_notebook(root / "nb.ipynb", gate_code(gate), "print('ran')")
    with (dashboards(root, max_kernels=1, queue_size=1, connect_timeout=0.2, grace_period=0.2) as served,
          http(served) as first, http(served) as second, http(served) as third,
          page(first, "dashboards/render/nb.ipynb") as running, page(second, "dashboards/render/nb.ipynb") as waiting):
        running.until(lambda text: 'data-done="0"' in text)
        waiting.until(lambda text: 'data-position="1"' in text)
        assert "you are number 1 in the queue" in waiting.text
        full = third.get("dashboards/render/nb.ipynb")
        assert full.status_code == 503
        gate.touch()
        assert "ran" in cells(running.finish())[1]
        # The first visit has no websocket: its kernel goes, and its slot passes to the queue.
        html = waiting.finish()
        assert "ran" in cells(html)[1] and 'data-status="ok"' in html


def test_a_page_that_leaves_the_queue_gives_its_place_up(root: Path) -> None:
    gate = root.parent / "go"
    write_notebook(root / "nb.ipynb", gate_code(gate))
    with (dashboards(root, max_kernels=1, queue_size=1) as served, http(served) as first, http(served) as second,
          page(first, "dashboards/render/nb.ipynb") as running):
        running.until(lambda text: 'data-done="0"' in text)
        slots = served.app.server.services["dashboards"].visits.slots
        with page(second, "dashboards/render/nb.ipynb") as waiting:
            waiting.until(lambda text: 'data-position="1"' in text)
            assert slots.waiting == 1
        wait_until(lambda: slots.waiting == 0, what="the queue to empty")
        gate.touch()


def test_a_pooled_kernel_serves_the_visit_with_its_request(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "import os; print('query', os.environ['QUERY_STRING'])")
    with dashboards(root, pool_size=1, pool_notebooks=["nb.ipynb"]) as served, http(served) as client:
        pools = served.app.server.services["dashboards"].visits.pools
        wait_until(lambda: len(pools["nb.ipynb"].ready) == 1, what="the pool to fill")
        pooled = pools["nb.ipynb"].ready[0].id
        html = client.get("dashboards/render/nb.ipynb?city=Oslo").text
        assert config_of(html)["kernelId"] == pooled
        assert "query city=Oslo" in cells(html)[0]
        wait_until(lambda: len(pools["nb.ipynb"].ready) == 1, what="the pool to refill")
        assert pools["nb.ipynb"].ready[0].id != pooled and len(kernel_ids(served)) == 2


def test_a_pool_stays_under_the_cap(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "print('hi')")
    with (dashboards(root, pool_size=2, max_kernels=2, pool_notebooks=["nb.ipynb"], connect_timeout=0.2) as served,
          http(served) as client):
        pool = served.app.server.services["dashboards"].visits.pools["nb.ipynb"]
        wait_until(lambda: len(pool.ready) == 2, what="the pool to fill")
        client.get("dashboards/render/nb.ipynb")
        assert len(kernel_ids(served)) <= 2
        wait_until(lambda: len(pool.ready) == 2 and len(kernel_ids(served)) == 2, what="the refill after the visit")


async def test_the_visitor_socket_reaches_its_own_kernel_only(root: Path) -> None:
    marker = root.parent / "executed"
    write_notebook(root / "nb.ipynb", "print('hi')")
    with dashboards(root) as served, http(served) as mine, http(served) as theirs:
        my_kernel = str(config_of(mine.get("dashboards/render/nb.ipynb").text)["kernelId"])
        their_kernel = str(config_of(theirs.get("dashboards/render/nb.ipynb").text)["kernelId"])
        assert mine.get(f"dashboards/api/kernels/{my_kernel}").json()["id"] == my_kernel
        assert mine.get(f"dashboards/api/kernels/{their_kernel}").status_code == 404
        with pytest.raises(InvalidStatus) as refused:
            await visitor_socket(served, mine, their_kernel)
        assert refused.value.response.status_code == 404
        assert mine.get("dashboards/api/kernels").status_code in (404, 405)  # no list of kernels
        socket = await visitor_socket(served, mine, my_kernel)
        try:
            await socket.send("shell", "execute_request", {"code": f"open({str(marker)!r}, 'w')", "silent": False,
                                                           "store_history": False, "user_expressions": {},
                                                           "allow_stdin": False})
            info = await socket.send("shell", "kernel_info_request", {})
            seen = await socket.until(lambda m: m.parent_id == info and m.channel == "shell")
            assert [m.msg_type for m in seen if m.channel == "shell"] == ["kernel_info_reply"]
        finally:
            await socket.close()
        assert not marker.exists()


async def test_no_source_crosses_the_visitor_socket(root: Path) -> None:
    gate = root.parent / "go"
    write_notebook(root / "nb.ipynb", gate_code(gate), "import ipywidgets; s = ipywidgets.IntSlider(value=3); s",
                   "print('done')", "raise RuntimeError('boom')")
    with dashboards(root) as served, http(served) as client, page(client, "dashboards/render/nb.ipynb") as p:
        kernel_id = str(p.config()["kernelId"])
        socket = await visitor_socket(served, client, kernel_id)  # waits for the kernel, then connects
        try:
            gate.touch()
            await asyncio.to_thread(p.finish)
            # Everything the run published has reached the page's connection once the idle status
            # of its fourth cell has (iopub is in order); the page finishing says nothing of that.
            def idles() -> int:
                return sum(1 for m in socket.received if m.msg_type == "status" and
                           m.content["execution_state"] == "idle" and m.parent_header.get("msg_type") == "execute_request")

            while idles() < 4:
                await socket.recv()
            info = await socket.send("shell", "kernel_info_request", {})
            await socket.wait_for(lambda m: m.parent_id == info and m.channel == "shell")
            seen = socket.received
            frames = [json.dumps([m.header, m.parent_header, m.metadata, m.content]) for m in seen]
            types = {m.msg_type for m in seen}
            assert "comm_open" in types  # the widget reached the page's kernel connection ...
            assert "execute_input" not in types and "error" not in types and "stream" not in types
            assert not any(SENTINEL in frame or "boom" in frame for frame in frames)  # ... and no source did
        finally:
            await socket.close()
