"""The gateway's REST API (Jupyter Enterprise Gateway 3.x): kernelspecs and the kernel lifecycle.

Every call is bounded (``connect_timeout`` to connect, ``request_timeout`` for the answer; a
kernel start waits for the launch, up to the launch timeout plus its pad). A gateway that cannot
be reached answers :class:`GatewayError` 503; one that answers an error keeps its status and its
words (EG puts them in ``reason``, jupyter_server in ``message``). GETs and DELETEs the gateway did
not answer are retried, as jupyter_server's GatewayClient does.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from carme.errors import ApiError

from .settings import GatewayConfig

log = logging.getLogger("carme.gateway.client")

RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_BACKOFF = 0.1  # seconds, doubled per retry


class GatewayError(ApiError):
    """The gateway refused or could not be reached; ``status`` is what carme answers with."""


def unreachable(config: GatewayConfig, exc: Exception) -> GatewayError:
    """The 503 for a gateway that did not answer."""
    if isinstance(exc, httpx.TimeoutException):
        what = f"did not answer within {config.request_timeout:g} s"
    else:
        what = f"cannot be reached: {exc or type(exc).__name__}"
    return GatewayError(503, f"Jupyter Enterprise Gateway at {config.url} {what}", "Service Unavailable")


def refused(response: httpx.Response) -> GatewayError:
    """The gateway's own error, its status kept and its words quoted."""
    words = ""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        words = str(body.get("message") or body.get("reason") or "")
    phrase = _phrase(response.status_code)
    message = f"Jupyter Enterprise Gateway answered {response.status_code} {phrase}"
    return GatewayError(response.status_code, f"{message}: {words}" if words else message, phrase)


def not_json(config: GatewayConfig, asked: str, response: httpx.Response, exc: Exception) -> GatewayError:
    """The 502 for a success answer carme cannot read (a proxy's HTML page, a wrong URL)."""
    kind = response.headers.get("content-type") or "no Content-Type"
    return GatewayError(502, f"Jupyter Enterprise Gateway at {config.url} answered {asked} with "
                        f"{response.status_code} but not JSON ({kind}): {exc}", "Bad Gateway")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class GatewayClient:
    """One app's client of the gateway's REST API (one connection pool)."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._reaping: set[asyncio.Future[None]] = set()
        self._http = httpx.AsyncClient(
            base_url=config.url, headers=config.headers, verify=config.ssl_context(),
            auth=httpx.BasicAuth(*config.basic_auth) if config.basic_auth else None,
            timeout=httpx.Timeout(config.request_timeout, connect=config.connect_timeout),
        )

    async def close(self) -> None:
        """Close the connections, after the kernels being reaped are shut down (each bounded by
        the start request's own timeout)."""
        if self._reaping:
            await asyncio.gather(*self._reaping, return_exceptions=True)
        await self._http.aclose()

    def reap(self, launch: asyncio.Future[dict[str, Any]], asked_id: str) -> None:
        """A start nobody waits for any more (the kernel was deleted while the gateway launched
        it): once ``launch`` answers, shut that kernel down on the gateway, in the background."""
        async def shut_down() -> None:
            try:
                model = await launch
            except Exception:  # noqa: BLE001 - it did not start (the start's error went nowhere: nobody waits)
                return
            remote_id = model["id"]
            log.info("kernel %s was deleted while the gateway launched it; shutting down %s there",
                     asked_id, remote_id)
            try:
                await self.shutdown_kernel(remote_id)
            except GatewayError as exc:
                log.warning("kernel %s may be left running on the gateway: %s", remote_id, exc.message)

        task = asyncio.ensure_future(shut_down())
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    async def request(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> httpx.Response:
        """``method`` on ``path``; the response when its status is below 400, else :class:`GatewayError`."""
        retries = self.config.request_retries if method in ("GET", "DELETE") else 0
        content = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else None
        extra = {} if timeout is None else {"timeout": httpx.Timeout(timeout, connect=min(timeout, self.config.connect_timeout))}
        for attempt in range(retries + 1):
            try:
                response = await self._http.request(method, path, content=content, headers=headers, **extra)
            except httpx.TransportError as exc:  # no answer: connection refused, reset, timed out
                if attempt < retries:
                    await asyncio.sleep(RETRY_BACKOFF * 2 ** attempt)
                    continue
                raise unreachable(self.config, exc) from None
            if response.status_code in RETRY_STATUSES and attempt < retries:
                await asyncio.sleep(RETRY_BACKOFF * 2 ** attempt)
                continue
            if response.status_code >= 400:
                raise refused(response)
            return response
        raise AssertionError("unreachable")  # the loop returns or raises

    async def json(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        """The decoded JSON answer (None when empty); an answer that is not JSON is a 502."""
        response = await self.request(method, path, body, timeout)
        if not response.content:
            return None
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise not_json(self.config, f"{method} {path}", response, exc) from None

    # -- kernelspecs ------------------------------------------------------------------------

    async def kernelspecs(self) -> dict[str, Any]:
        """``{"default", "kernelspecs": {name: model}}``, the specs the configured user may use."""
        found = await self._get_params(self.config.kernelspecs_endpoint, self._user())
        if not isinstance(found, dict) or not isinstance(found.get("kernelspecs"), dict):
            raise GatewayError(502, "Jupyter Enterprise Gateway sent a kernelspec list without 'kernelspecs'",
                               "Bad Gateway")
        return found

    async def kernelspec(self, name: str) -> dict[str, Any] | None:
        """One spec's model, or None when the gateway has no spec of that name."""
        try:
            found = await self._get_params(f"{self.config.kernelspecs_endpoint}/{quote(name, safe='')}", self._user())
        except GatewayError as exc:
            if exc.status == 404:
                return None
            raise
        return found if isinstance(found, dict) else None

    async def resource(self, name: str, filename: str) -> bytes:
        """A kernelspec resource file (a logo)."""
        path = f"{self.config.kernelspecs_resource_endpoint}/{quote(name, safe='')}/{quote(filename, safe='')}"
        return (await self.request("GET", path)).content

    def _user(self) -> dict[str, str]:
        # EG hides the specs a user may not use when asked with ?user= (jupyter_server asks so too).
        return {"user": self.config.default_username} if self.config.default_username else {}

    async def _get_params(self, path: str, params: dict[str, str]) -> Any:
        if params:
            path = str(httpx.URL(path, params=params))
        return await self.json("GET", path)

    # -- kernels ----------------------------------------------------------------------------

    def kernel_path(self, kernel_id: str) -> str:
        return f"{self.config.kernels_endpoint}/{quote(kernel_id, safe='')}"

    async def start_kernel(self, name: str, env: dict[str, str]) -> dict[str, Any]:
        """Launch a kernel of spec ``name``; its model once the gateway has launched it."""
        timeout = self.config.request_timeout  # >= launch_timeout + pad (settings)
        model = await self.json("POST", self.config.kernels_endpoint, {"name": name, "env": env}, timeout=timeout)
        if not isinstance(model, dict) or not isinstance(model.get("id"), str):
            raise GatewayError(502, "Jupyter Enterprise Gateway answered a kernel start without a kernel id",
                               "Bad Gateway")
        return model

    async def get_kernel(self, kernel_id: str, timeout: float | None = None) -> dict[str, Any] | None:
        """The kernel's model, or None when the gateway does not know it (any more)."""
        try:
            model = await self.json("GET", self.kernel_path(kernel_id), timeout=timeout)
        except GatewayError as exc:
            if exc.status == 404:
                return None
            raise
        return model if isinstance(model, dict) else None

    async def interrupt_kernel(self, kernel_id: str) -> None:
        await self.request("POST", self.kernel_path(kernel_id) + "/interrupt", {})

    async def restart_kernel(self, kernel_id: str) -> None:
        await self.request("POST", self.kernel_path(kernel_id) + "/restart", {})

    async def shutdown_kernel(self, kernel_id: str, timeout: float | None = None) -> None:
        """Shut the kernel down; one the gateway does not know is not an error."""
        try:
            await self.request("DELETE", self.kernel_path(kernel_id), timeout=timeout)
        except GatewayError as exc:
            if exc.status != 404:
                raise
