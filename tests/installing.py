"""Install tiny extensions as real distributions: a dist-info folder with METADATA and
entry_points.txt next to the module, in a site folder on sys.path, which is what pip writes.

importlib.metadata finds them exactly as it finds installed packages; subprocesses see them
through PYTHONPATH (see the ``site_dir`` fixture in tests/core/conftest.py).
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Site:
    """A site folder on sys.path; :meth:`install` adds a distribution to it."""

    path: Path
    modules: list[str] = field(default_factory=list)

    def install(self, name: str, code: str, *, dist: str | None = None, version: str = "1.0.0",
                module: str | None = None) -> str:
        """Install extension ``name`` (entry point in group carme.extensions) whose module is
        ``code``; returns the module name."""
        dist = dist or f"carme-test-{name}"
        module = module or f"carme_test_{name}_{len(self.modules)}_{abs(hash(self.path)) % 10_000}"
        (self.path / f"{module}.py").write_text(textwrap.dedent(code))
        info = self.path / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[carme.extensions]\n{name} = {module}\n")
        (info / "RECORD").write_text("")
        self.modules.append(module)
        importlib.invalidate_caches()  # new files: import and importlib.metadata must look again
        return module

    def cleanup(self) -> None:
        for module in self.modules:
            sys.modules.pop(module, None)
        importlib.invalidate_caches()
