"""NotebookExecutor on a real ipykernel: order, progressive results, tags, errors, timeouts,
display updates across cells, clear_output, a dying kernel, setup code, its own session id."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import pytest_asyncio

from carme.kernels.kernel import Kernel
from carme.kernels.message import KernelMessage
from carme.server import Server
from carme_dashboards.executor import ExecutionFailed, NotebookExecutor
from carme_dashboards.render import ERROR_MESSAGE, WIDGET_VIEW, OutputRenderer
from tests.polling import await_until

from .conftest import markdown, notebook, raw, run, tagged, texts

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def kernel(kserver: Server) -> Kernel:
    return await kserver.kernels.start_kernel("python3")


async def test_cells_run_in_order_and_markdown_and_raw_cells_come_through(kernel: Kernel) -> None:
    nb = notebook("order = ['a']; print(order)", markdown("# Title"), "order.append('b'); print(order)",
                  raw("raw text"), "order.append('c'); order")
    results = await run(kernel, nb)
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    assert [r.cell.cell_type for r in results] == ["code", "markdown", "code", "raw", "code"]
    assert texts(results[0]) == ["['a']\n"] and texts(results[2]) == ["['a', 'b']\n"]
    assert results[1].outputs == [] and results[3].outputs == []
    assert results[4].outputs[0]["output_type"] == "execute_result"
    assert results[4].outputs[0]["data"]["text/plain"] == "['a', 'b', 'c']"
    assert all(r.error is None and not r.skipped for r in results)
    assert nb.cells[4].outputs is results[4].outputs  # set in place, as nbclient does


async def test_each_result_comes_as_soon_as_its_cell_is_done(kernel: Kernel, tmp_path: Path) -> None:
    # The second cell waits for a file that the test writes only after it got the first result:
    # an executor that held results back until later cells finished would never get there.
    flag = tmp_path / "go"
    nb = notebook("print('first')", f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.01)\n"
                                     "print('second')")
    async with NotebookExecutor(kernel) as executor:
        results = executor.execute(nb)
        first = await asyncio.wait_for(anext(results), 60)
        assert texts(first) == ["first\n"]
        flag.write_text("")
        second = await asyncio.wait_for(anext(results), 60)
        assert texts(second) == ["second\n"]
        with pytest.raises(StopAsyncIteration):
            await anext(results)


async def test_the_run_stops_at_the_first_error(kernel: Kernel) -> None:
    nb = notebook("print('before')", "1 / 0", "print('after')")
    results = await run(kernel, nb)
    assert len(results) == 2
    error = results[1].error
    assert error is not None and error.kind == "exception" and error.ename == "ZeroDivisionError"
    assert any("ZeroDivisionError" in line for line in error.traceback)
    assert [o["output_type"] for o in results[1].outputs] == ["error"]


async def test_allow_errors_and_the_raises_exception_tag_go_on(kernel: Kernel) -> None:
    results = await run(kernel, notebook("1 / 0", "print('after')"), allow_errors=True)
    assert results[0].error is not None and texts(results[1]) == ["after\n"]
    results = await run(kernel, notebook(tagged("raise KeyError('k')", "raises-exception"), "print('after')",
                                         "{}['missing']", "print('never')"))
    assert [r.error.ename if r.error else None for r in results] == ["KeyError", None, "KeyError"]
    assert texts(results[1]) == ["after\n"]


async def test_skip_execution_cells_are_not_run(kernel: Kernel) -> None:
    name = f"skipped_{uuid.uuid4().hex}"
    results = await run(kernel, notebook(tagged(f"{name} = 1", "skip-execution"), f"print('{name}' in globals())"))
    assert results[0].skipped and results[0].outputs == [] and results[0].error is None
    assert texts(results[1]) == ["False\n"]


async def test_empty_cells_are_not_sent(kernel: Kernel) -> None:
    seen: list[KernelMessage] = []
    unsubscribe = kernel.subscribe(seen.append)
    try:
        results = await run(kernel, notebook("", "   \n"))
    finally:
        unsubscribe()
    assert [r.outputs for r in results] == [[], []]
    assert not [m for m in seen if m.msg_type == "execute_input"]


async def test_requests_carry_the_executor_session_id_and_keep_no_history(kernel: Kernel) -> None:
    inputs: list[KernelMessage] = []
    unsubscribe = kernel.subscribe(lambda m: inputs.append(m) if m.msg_type == "execute_input" else None)
    try:
        async with NotebookExecutor(kernel, session_id="dash-session") as executor:
            assert executor.session_id == "dash-session"
            results = [r async for r in executor.execute(notebook("n = len(In); n", "len(In) == n"))]
    finally:
        unsubscribe()
    assert results[1].outputs[0]["data"]["text/plain"] == "True"  # store_history=False: In did not grow
    assert len(inputs) == 2 and {m.parent_header["session"] for m in inputs} == {"dash-session"}


async def test_streams_merge_and_clear_output_is_honoured(kernel: Kernel) -> None:
    nb = notebook("import sys\nfor i in range(3): print(i, flush=True)\n"
                  "print('err', file=sys.stderr, flush=True)\nprint('end')",
                  "from IPython.display import clear_output\nprint('gone', flush=True)\nclear_output()\nprint('kept')",
                  "from IPython.display import clear_output\nprint('old', flush=True)\nclear_output(wait=True)\n"
                  "print('new')")
    results = await run(kernel, nb)
    assert [(o["name"], o["text"]) for o in results[0].outputs] == [("stdout", "0\n1\n2\n"), ("stderr", "err\n"),
                                                                     ("stdout", "end\n")]
    assert texts(results[1]) == ["kept\n"]
    assert texts(results[2]) == ["new\n"]


async def test_update_display_data_reaches_outputs_of_earlier_cells(kernel: Kernel) -> None:
    nb = notebook("from IPython.display import display\nh = display('v1', display_id=True)",
                  "print('between')", "h.update('v2')")
    results = await run(kernel, nb)
    assert results[0].outputs[0]["data"]["text/plain"] == "'v2'"
    assert results[2].updated_cells == (0,) and results[2].outputs == []
    assert results[1].updated_cells == ()


async def test_a_cell_past_the_timeout_interrupts_the_kernel_and_ends_the_run(kernel: Kernel, tmp_path: Path) -> None:
    never = tmp_path / "never"
    nb = notebook(f"import os, time\nprint('started', flush=True)\n"
                  f"while not os.path.exists({str(never)!r}): time.sleep(0.05)", "print('not run')")
    results = await run(kernel, nb, timeout=2)
    assert len(results) == 1
    error = results[0].error
    assert error is not None and error.kind == "timeout" and error.ename == "CellTimeoutError"
    assert texts(results[0])[0] == "started\n"
    # The interrupt ended the cell: the kernel runs the next notebook (still stuck: no answer).
    again = await asyncio.wait_for(run(kernel, notebook("'alive'")), 60)
    assert [o["data"]["text/plain"] for o in again[0].outputs] == ["'alive'"]


async def test_run_silent_for_setup_code(kernel: Kernel) -> None:
    async with NotebookExecutor(kernel) as executor:
        reply = await executor.run_silent("import os; os.environ['DASH_SETUP'] = 'yes'")
        assert reply["status"] == "ok"
        with pytest.raises(ExecutionFailed) as failed:
            await executor.run_silent("raise ValueError('no')")
        assert failed.value.ename == "ValueError"
        results = [r async for r in executor.execute(notebook("print(os.environ['DASH_SETUP'])"))]
    assert texts(results[0]) == ["yes\n"]


async def test_closing_the_run_early_leaves_the_executor_usable(kernel: Kernel) -> None:
    async with NotebookExecutor(kernel) as executor:
        results = executor.execute(notebook("print(1)", "print(2)"))
        assert texts(await anext(results)) == ["1\n"]
        await results.aclose()
        again = [r async for r in executor.execute(notebook("print(3)"))]
    assert texts(again[0]) == ["3\n"]


async def test_output_widgets_capture_as_a_frontend_would(kernel: Kernel) -> None:
    nb = notebook("import ipywidgets\nfrom IPython.display import display, clear_output\n"
                  "out = ipywidgets.Output()\nout.append_stdout('pre\\n')\nother = ipywidgets.Output()\ndisplay(out)",
                  "with out:\n    print('inside')\n    with other:\n        print('nested')\n"
                  "    display({'text/plain': 'shown'}, raw=True)\nprint('outside')",
                  "with other:\n    clear_output()\n    print('replaced')",
                  "print([o.get('text', o.get('data')) for o in out.outputs])\nprint(other.outputs)")
    results = await run(kernel, nb)
    assert [r.error for r in results] == [None] * 4
    assert [o["output_type"] for o in results[0].outputs] == ["display_data"]
    assert texts(results[1]) == ["outside\n"] and len(results[1].outputs) == 1  # captured output left the cell
    assert results[2].outputs == []
    # The kernel's widgets got the captured outputs (streams merged, clear_output honoured).
    captured, other = texts(results[3])[0].splitlines()
    assert captured == "['pre\\ninside\\n', {'text/plain': 'shown'}]"
    assert "'text': 'replaced\\n'" in other and "nested" not in other


async def test_a_kernel_that_dies_ends_the_run_with_an_error(kserver: Server) -> None:
    kernel = await kserver.kernels.start_kernel("python3")
    try:
        async with NotebookExecutor(kernel) as executor:
            results = [r async for r in executor.execute(notebook("print('ok')", "import os; os._exit(1)",
                                                                  "print('never')"))]
            assert len(results) == 2 and results[0].error is None
            error = results[1].error
            assert error is not None and error.kind == "dead" and error.ename == "DeadKernelError"
            # The kernel manager restarts it; the same executor runs on the restarted kernel.
            await await_until(lambda: kernel.execution_state == "idle", "the restarted kernel")
            again = [r async for r in executor.execute(notebook("print('back')"))]
            assert texts(again[0]) == ["back\n"]
    finally:
        await kserver.kernels.shutdown_kernel(kernel.id)
    results = await run(kernel, notebook("print('shut down')"))
    assert len(results) == 1 and results[0].error is not None and results[0].error.kind == "dead"


async def test_a_real_run_renders_widgets_and_leaks_no_error_details(kernel: Kernel) -> None:
    nb = notebook("import ipywidgets, warnings\nslider = ipywidgets.IntSlider(7)\nslider",
                  "warnings.warn('sentinel-warning')\nprint('\\x1b[32mgreen\\x1b[0m')",
                  "secret = 'sentinel-' + 'value'\nraise RuntimeError(secret)")
    results = await run(kernel, nb)
    html = "".join(OutputRenderer(show_tracebacks=False).render_outputs(r.outputs) for r in results)
    model_id = results[0].outputs[0]["data"][WIDGET_VIEW]["model_id"]
    assert f'<div class="carme-widget" data-model-id="{model_id}"><pre class="carme-widget-fallback">IntSlider(' in html
    assert '<span class="ansi-green-fg">green</span>' in html and ERROR_MESSAGE in html
    assert "sentinel" not in html and "RuntimeError" not in html
    shown = "".join(OutputRenderer(show_tracebacks=True).render_outputs(r.outputs) for r in results)
    assert "sentinel-warning" in shown and "sentinel-value" in shown


async def test_a_restart_during_a_cell_ends_the_run(kserver: Server, tmp_path: Path) -> None:
    kernel = await kserver.kernels.start_kernel("python3")
    started = tmp_path / "started"
    try:
        async with NotebookExecutor(kernel) as executor:
            results = executor.execute(notebook(f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\n"
                                                "time.sleep(600)", "print('never')"))
            first = asyncio.ensure_future(anext(results))
            await await_until(started.exists, "the cell to start")
            await kserver.kernels.restart_kernel(kernel.id)
            result = await asyncio.wait_for(first, 60)
            assert result.error is not None and result.error.kind == "dead" and "restarted" in result.error.evalue
            with pytest.raises(StopAsyncIteration):
                await anext(results)
    finally:
        await kserver.kernels.shutdown_kernel(kernel.id)
