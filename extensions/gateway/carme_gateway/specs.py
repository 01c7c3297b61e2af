"""Kernelspecs from the gateway, served by carme's /api/kernelspecs as if they were installed.

carme calls a spec manager's methods in worker threads; these run the gateway requests on the
app's event loop and wait for them (bounded). Resource files (logos) are fetched once into a
cache folder of the app's own, so ``/kernelspecs/NAME/FILE`` serves them like local ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from carme.contents.fileio import atomic_write
from carme.kernels.specs import NAME_RE, KernelSpec, KernelSpecManager, NoSuchKernelSpec

from .client import GatewayClient, GatewayError

log = logging.getLogger("carme.gateway.specs")

T = TypeVar("T")
RESOURCE_PREFIXES = ("logo-",)
RESOURCE_NAMES = ("kernel.js", "kernel.css")


class GatewaySpecManager(KernelSpecManager):
    """The gateway's kernelspecs (those its user may use), with carme's API models."""

    def __init__(self, client: GatewayClient, loop: asyncio.AbstractEventLoop, default_name: str,
                 cache_dir: Path) -> None:
        super().__init__(default_name, dirs=[])
        self.client = client
        self.loop = loop
        self.cache_dir = cache_dir
        config = client.config
        # Longest a call may take: every retry of a request, plus the resource downloads.
        self._wait = 2 * config.request_timeout * (config.request_retries + 1) + 5

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            coro.close()
            raise RuntimeError("the gateway's kernelspecs are read off the event loop (asyncio.to_thread)")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(self._wait)

    # -- KernelSpecManager ------------------------------------------------------------------

    def find(self) -> dict[str, Path]:
        return {}  # no spec folders: every spec is the gateway's

    def all_specs(self) -> dict[str, KernelSpec]:
        return self._run(self._all())[1]

    def get(self, name: str) -> KernelSpec:
        spec = self._run(self._one(name))
        if spec is None:
            raise NoSuchKernelSpec(name)
        return spec

    def models(self, base_url: str = "/") -> dict[str, Any]:
        default, specs = self._run(self._all())
        if self.default_name in specs:
            default = self.default_name
        return {"default": default, "kernelspecs": {name: self.model(s, base_url) for name, s in sorted(specs.items())}}

    # -- on the event loop ------------------------------------------------------------------

    async def _all(self) -> tuple[str, dict[str, KernelSpec]]:
        listing = await self.client.kernelspecs()
        specs: dict[str, KernelSpec] = {}
        for name, model in listing["kernelspecs"].items():
            spec = await self._spec(str(name), model)
            if spec is not None:
                specs[spec.name] = spec
        return str(listing.get("default") or ""), specs

    async def _one(self, name: str) -> KernelSpec | None:
        model = await self.client.kernelspec(name)
        return None if model is None else await self._spec(name, model)

    async def _spec(self, name: str, model: Any) -> KernelSpec | None:
        if not NAME_RE.match(name) or not isinstance(model, dict):
            log.warning("skipping the gateway's kernelspec %r: not a valid name or model", name[:80])
            return None
        data = model.get("spec")
        if isinstance(data, dict) and not data.get("argv"):
            data = {**data, "argv": ["(on the gateway)"]}  # carme's specs need one; it is never run here
        try:
            spec = KernelSpec.from_dict(name, data, None)
        except ValueError as exc:
            log.warning("skipping the gateway's kernelspec %r: %s", name, exc)
            return None
        resources = model.get("resources")
        if isinstance(resources, dict):
            spec.resource_dir = await self._cache_resources(name, [str(url) for url in resources.values()])
        return spec

    async def _cache_resources(self, name: str, urls: list[str]) -> Path:
        """The spec's resource folder in the cache, fetching the files it lacks."""
        folder = self.cache_dir / name
        wanted = {url.rsplit("/", 1)[-1] for url in urls}
        wanted = {f for f in wanted if f.startswith(RESOURCE_PREFIXES) or f in RESOURCE_NAMES}
        missing = [f for f in sorted(wanted) if "/" not in f and f not in ("", ".", "..") and not (folder / f).is_file()]
        if missing:
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
            await asyncio.gather(*(self._fetch(name, filename, folder) for filename in missing))
        return folder

    async def _fetch(self, name: str, filename: str, folder: Path) -> None:
        try:
            data = await self.client.resource(name, filename)
        except GatewayError as exc:
            log.warning("kernelspec %s: cannot fetch %s from the gateway: %s", name, filename, exc.message)
            return
        await asyncio.to_thread(atomic_write, str(folder / filename), data)

