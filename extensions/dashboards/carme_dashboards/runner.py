"""Running a visit: get a kernel (a place in the queue, a fresh start or a pooled one), then run
the notebook cell by cell, appending each cell's HTML to the visit's page log as it finishes."""

from __future__ import annotations

import asyncio
import logging
import posixpath
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from nbformat import NotebookNode

from .executor import RAISES_TAG, CellResult, NotebookExecutor
from .markdown import UrlRewriter
from .render import OutputRenderer
from .slots import Busy
from .stream import CellEvent, Finished, ProgressEvent, QueueEvent, UpdateEvent

if TYPE_CHECKING:
    from carme.server import Server

    from .visits import Visit, VisitRegistry

log = logging.getLogger("carme.dashboards.runner")

SERVER_SOFTWARE = "carme-dashboards"


def environ_code(env: dict[str, str]) -> str:
    """Python that puts ``env`` into a running kernel's ``os.environ`` (a pooled kernel's request)."""
    return f"import os as _carme_os\n_carme_os.environ.update({dict(env)!r})\ndel _carme_os\n"


# ipykernel 7 handles a comm message from the page on the subshell that last *sent* on that comm
# (the main shell, for a widget a cell made), so the page's widgets wait behind a running cell.
# This routes each one to the subshell it came on (the page's own), where it runs at once.
SUBSHELL_COMMS = """
def _carme_route_comms():
    try:
        from ipykernel.comm.comm import BaseComm
    except Exception:
        return
    if hasattr(BaseComm, "_reply_subshell_for"):
        BaseComm._reply_subshell_for = lambda self, data, default: default
_carme_route_comms()
del _carme_route_comms
"""


def relative_urls(base_url: str, notebook_path: str) -> UrlRewriter:
    """Relative links and images of a notebook's markdown, as served: notebooks to their
    dashboard, other files to ``dashboards/files/`` (where the allow/deny lists apply)."""
    folder = posixpath.dirname(notebook_path)

    def rewrite(url: str) -> str | None:
        parts = urlsplit(url)
        target = posixpath.normpath(posixpath.join(folder, parts.path)) if parts.path else notebook_path
        if target.startswith("../") or target == "..":
            return None  # outside the root: left as written, it cannot be served anyway
        kind = "render" if target.endswith(".ipynb") else "files"
        rest = ("?" + parts.query if parts.query else "") + ("#" + parts.fragment if parts.fragment else "")
        return f"{base_url}dashboards/{kind}/{quote(target)}{rest}"

    return rewrite


def _tags(cell: NotebookNode) -> tuple[str, ...]:
    tags = cell.get("metadata", {}).get("tags") or []
    return tuple(t for t in tags if isinstance(t, str))


class VisitRunner:
    """Runs visits for one app (the registry's ``runner``)."""

    def __init__(self, server: Server, registry: VisitRegistry) -> None:
        self.server = server
        self.registry = registry

    def start(self, visit: Visit) -> asyncio.Task[None]:
        return asyncio.create_task(self.run(visit), name=f"dashboard {visit.key.path} {visit.kernel_id}")

    async def run(self, visit: Visit) -> None:
        """The whole run of ``visit``; ends with ``visit.log.finish``, whatever happens."""
        total = len(visit.notebook.notebook.cells)
        try:
            await self._kernel(visit, total)
        except asyncio.CancelledError:
            visit.ready.set()
            raise
        except Busy:
            visit.error = "every kernel is taken"
            visit.log.finish(Finished("error", "The server is busy: every kernel is taken. Try again later."))
            visit.ready.set()
            return
        except Exception as exc:
            log.warning("dashboard %s: the kernel did not start: %s", visit.key.path, exc)
            visit.error = f"the kernel did not start: {exc}"
            visit.log.finish(Finished("error", "The kernel could not be started."))
            visit.ready.set()
            return
        assert visit.kernel is not None
        kernel = visit.kernel
        executor = NotebookExecutor(kernel, session_id=visit.executor_session,
                                    interrupt=lambda: self.server.kernels.interrupt_kernel(kernel.id))
        visit.ready.set()
        try:
            if visit.pooled:
                await executor.run_silent(environ_code(visit.env))
            if self.registry.widget_subshells and visit.notebook.language.lower() == "python" \
                    and "kernel subshells" in kernel.kernel_info.get("supported_features", ()):
                await executor.run_silent(SUBSHELL_COMMS)
            visit.log.finish(await self._cells(visit, executor, total))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dashboard %s: the run failed", visit.key.path)
            visit.log.finish(Finished("error", "The dashboard could not be run."))
        finally:
            await executor.close()

    async def _kernel(self, visit: Visit, total: int) -> None:
        if visit.queued:
            await self.registry.slots.take(lambda position: visit.log.append(QueueEvent(position)))
            visit.holds_slot = True
        visit.log.append(ProgressEvent(0, total, "Starting the kernel"))
        if visit.kernel is None:
            notebook = visit.notebook
            visit.kernel = await self.server.kernels.start_kernel(notebook.kernel_name, notebook.path, env=visit.env,
                                                                  kernel_id=visit.kernel_id,
                                                                  provisioner=self.registry.provisioner)

    async def _cells(self, visit: Visit, executor: NotebookExecutor, total: int) -> Finished:
        options = visit.options
        renderer = OutputRenderer(options.show_tracebacks,
                                  rewrite_url=relative_urls(visit.base_url, visit.notebook.path))
        notebook = visit.notebook.notebook
        outcome = Finished("ok")
        async for result in executor.execute(notebook, timeout=options.cell_timeout, allow_errors=options.allow_errors):
            visit.log.append(self.cell_event(result, renderer, options.strip_sources))
            for index in result.updated_cells:
                visit.log.append(UpdateEvent(index, renderer.render_outputs(notebook.cells[index].get("outputs", []))))
            done = result.index + 1
            visit.log.append(ProgressEvent(done, total, f"cell {done} of {total}"))
            error = result.error
            if error is not None and not (error.kind == "exception"
                                          and (options.allow_errors or RAISES_TAG in _tags(result.cell))):
                status = "timeout" if error.kind == "timeout" else "error"
                outcome = Finished(status, _stop_message(error.kind, done, total), result.index)
        return outcome

    @staticmethod
    def cell_event(result: CellResult, renderer: OutputRenderer, strip_sources: bool) -> CellEvent:
        """A finished cell as the page shows it."""
        cell = result.cell
        kind = str(cell.get("cell_type", "code"))
        source = None if strip_sources or kind != "code" else str(cell.get("source", ""))
        if kind == "markdown":
            body = renderer.render_markdown(str(cell.get("source", "")), cell.get("attachments") or {})
        elif kind == "raw":
            # A raw cell meant for HTML output is the author's HTML, as nbconvert includes it.
            mime = cell.get("metadata", {}).get("format") or cell.get("metadata", {}).get("raw_mimetype")
            body = str(cell.get("source", "")) if mime in ("text/html", "html") else ""
        elif result.skipped:
            body = ""
        else:
            body = renderer.render_outputs(result.outputs)
        body += renderer.render_cell_error(result.error)
        error = result.error.kind if result.error is not None else None
        return CellEvent(result.index, kind, body, source, error, _tags(cell))


def _stop_message(kind: str, done: int, total: int) -> str:
    what = {"timeout": "ran past the time limit", "dead": "lost its kernel"}.get(kind, "failed")
    rest = total - done
    return f"Cell {done} of {total} {what}; " + (f"the {rest} cells after it did not run." if rest > 1 else
                                                 "the cell after it did not run." if rest == 1 else "it was the last.")
