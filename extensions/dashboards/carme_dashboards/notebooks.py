"""Loading a notebook for a dashboard, and choosing the kernel it runs on.

Notebooks are read through the server's contents manager, so the root, hidden-file and symlink
rules of /api/contents apply: nothing outside the served root is ever read. The kernelspec is
chosen as Voila's ``attempt_fix_notebook`` does: the ``dashboards.kernel_name`` setting, else the
notebook's own kernelspec when it is installed, else the first installed spec of the notebook's
language (by display name), else the server's default kernel.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import nbformat
from nbformat import NotebookNode

from carme.errors import ApiError

from .scripts import notebook_from_script

if TYPE_CHECKING:
    from carme.kernels.specs import KernelSpec, KernelSpecManager
    from carme.server import Server

log = logging.getLogger("carme.dashboards.notebooks")


@dataclass(frozen=True)
class LoadedNotebook:
    """A notebook ready to run: its API path, content, kernelspec name and language."""

    path: str
    notebook: NotebookNode
    kernel_name: str
    language: str
    last_modified: str


def script_language(path: str, scripts: Mapping[str, str]) -> str | None:
    """The language of a script a dashboard may run (its extension is mapped), else None."""
    dot = path.rfind(".")
    return scripts.get(path[dot:].lower()) if dot > path.rfind("/") else None


def is_notebook_path(path: str, scripts: Mapping[str, str] | None = None) -> bool:
    return path.endswith(".ipynb") or (scripts is not None and script_language(path, scripts) is not None)


async def load_notebook(server: Server, path: str, kernel_override: str | None,
                        scripts: Mapping[str, str] | None = None) -> LoadedNotebook:
    """Read and upgrade the notebook (or mapped script) at API ``path``; ApiError 404 when there
    is none, 400 when it is not a valid notebook."""
    language = script_language(path, scripts or {})
    if not path.endswith(".ipynb") and language is None:
        raise ApiError(404, f"{path} is not a notebook", "Not Found")
    if language is not None:
        model = await server.contents.get(path, content=True, type="file", format="text")
        node = await asyncio.to_thread(notebook_from_script, str(model["content"]), language)
    else:
        model = await server.contents.get(path, content=True, type="notebook")
        try:
            node = await asyncio.to_thread(_upgrade, model["content"])
        except Exception as exc:  # nbformat raises several kinds for a broken file
            raise ApiError(400, f"{path} is not a valid notebook: {exc}", "Bad Request") from None
    name, language = await asyncio.to_thread(choose_kernel, server.kernelspecs, node, kernel_override,
                                             server.settings["default_kernel_name"])
    return LoadedNotebook(path, node, name, language, str(model.get("last_modified", "")))


def _upgrade(content: dict[str, Any]) -> NotebookNode:
    node = nbformat.from_dict(content)
    if node.get("nbformat", 4) < 4:
        node = nbformat.convert(node, 4)
    return node


def _language_of(notebook: NotebookNode) -> str:
    metadata = notebook.get("metadata", {})
    kernelspec = metadata.get("kernelspec") or {}
    language_info = metadata.get("language_info") or {}
    return str(kernelspec.get("language") or language_info.get("name") or "")


def choose_kernel(specs: KernelSpecManager, notebook: NotebookNode, override: str | None,
                  default: str) -> tuple[str, str]:
    """(kernelspec name, language) to run ``notebook`` with. Blocking (reads kernelspecs)."""
    installed: dict[str, KernelSpec] = specs.all_specs()
    if override:
        spec = installed.get(override.lower())
        return override, spec.language if spec else _language_of(notebook)
    wanted = str((notebook.get("metadata", {}).get("kernelspec") or {}).get("name") or "")
    if wanted.lower() in installed:
        return wanted.lower(), installed[wanted.lower()].language
    language = _language_of(notebook)
    same = sorted((s for s in installed.values() if language and s.language.lower() == language.lower()),
                  key=lambda s: s.display_name)
    if same:
        if wanted:
            log.info("kernelspec %r is not installed; running the notebook on %r (same language %s)", wanted,
                     same[0].name, language)
        return same[0].name, same[0].language
    spec = installed.get(default)
    return default, spec.language if spec else language
