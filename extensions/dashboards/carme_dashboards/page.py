"""Rendering pages from templates; a dashboard page is streamed while its visit runs.

The dashboard template gets ``stream``, an async iterator of the visit's events (cells,
progress, queue positions, updates of earlier cells), and ``run``, whose ``finished`` is set once
the loop over ``stream`` has ended. Whatever the template has produced is sent each time it asks
for the next event, so the head (page config, client script, styles) leaves before the kernel
has started, and each cell leaves as soon as it has run. A template must keep the loop over
``stream`` in its own blocks: jinja renders a ``{{ super() }}`` call in one piece, so a loop
reached through ``super()`` would arrive all at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import jinja2
from markupsafe import Markup

from .stream import Event, RenderLog
from .templates import BrokenTemplate, Templates

log = logging.getLogger("carme.dashboards.page")

PAGES = ("page.html", "tree.html", "busy.html", "error.html")
KEEPALIVE = 10.0  # seconds without an event before a byte is sent anyway (proxies time out idle responses)


def script_json(data: Any) -> Markup:
    """JSON safe inside a ``<script type="application/json">`` element."""
    text = json.dumps(data, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


class _Run:
    """The ``run`` the template reads after its loop: how the run ended."""

    def __init__(self, render_log: RenderLog) -> None:
        self._log = render_log

    @property
    def finished(self) -> Any:
        return self._log.finished


class PageRenderer:
    """Renders the pages of one template chain for one app."""

    def __init__(self, templates: Templates, keepalive: float = KEEPALIVE) -> None:
        self.templates = templates
        self.keepalive = keepalive

    def urls(self, template: str, base_url: str) -> dict[str, Any]:
        """URL helpers every page gets: ``base_url``, ``static_url(path)`` of the template's
        static files, ``dashboards_url`` (``base_url`` + ``dashboards/``)."""
        dashboards = base_url + "dashboards/"

        def static_url(path: str) -> str:
            return f"{dashboards}templates/{template}/static/{path.lstrip('/')}"

        return {"base_url": base_url, "dashboards_url": dashboards, "static_url": static_url}

    def _context(self, template: str, base_url: str, context: Mapping[str, Any]) -> dict[str, Any]:
        chain, _env = self.templates.environment(template)
        resources: dict[str, Any] = {}
        for item in reversed(chain):  # a template's resources override its base's
            resources.update(item.resources)
        return {**self.urls(template, base_url), "template": template, "resources": resources, **context}

    def compile(self, template: str) -> None:
        """Load and compile the template's pages now (blocking: call it off the event loop);
        :class:`BrokenTemplate` naming the file and line jinja2 refuses."""
        chain, env = self.templates.environment(template)
        for name in PAGES:
            try:
                env.get_template(name)
            except jinja2.TemplateSyntaxError as exc:
                raise BrokenTemplate(template, chain[0].path, f"{exc.name or name}, line {exc.lineno}: "
                                     f"{exc.message}") from None
            except jinja2.TemplateNotFound as exc:  # an extends or include of a file nobody has
                raise BrokenTemplate(template, chain[0].path, f"{name}: no template file {exc.name!r} "
                                     "in its chain") from None

    async def render(self, template: str, name: str, base_url: str, context: Mapping[str, Any]) -> str:
        """A whole page (tree, busy, error) at once."""
        _chain, env = self.templates.environment(template)
        page = env.get_template(name)
        return await page.render_async(self._context(template, base_url, context))

    async def stream(self, template: str, base_url: str, context: Mapping[str, Any],
                     render_log: RenderLog) -> AsyncIterator[str]:
        """The dashboard page of a visit, in chunks, as its run goes on."""
        _chain, env = self.templates.environment(template)
        page = env.get_template("page.html")
        chunks: asyncio.Queue[str | None] = asyncio.Queue()
        pending: list[str] = []

        def flush() -> None:
            if pending:
                chunks.put_nowait("".join(pending))
                pending.clear()

        async def events() -> AsyncIterator[Event]:
            following = render_log.follow(self.keepalive)
            while True:
                flush()  # what the template made of the last event leaves before the wait for the next
                try:
                    event = await anext(following)
                except StopAsyncIteration:
                    return
                if event is None:
                    chunks.put_nowait("\n")  # keep-alive: a byte that changes nothing on the page
                    continue
                yield event

        async def produce() -> None:
            try:
                full = self._context(template, base_url, {**context, "stream": events(), "run": _Run(render_log)})
                async for piece in page.generate_async(full):
                    pending.append(piece)
            except Exception:
                log.exception("dashboard template %r failed while streaming", template)
                pending.append('<div class="carme-template-error">The page template failed; see the server log.</div>')
            finally:
                flush()
                chunks.put_nowait(None)

        producer = asyncio.ensure_future(produce())
        try:
            while (chunk := await chunks.get()) is not None:
                yield chunk
        finally:
            if not producer.done():
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await producer
