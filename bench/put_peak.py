"""Peak server memory of one big PUT: carme (and jupyter_server) saving a ~300 MB text file.

    .venv/bin/python bench/put_peak.py [--mb 300] [--targets carme,jupyter_server]

The server's peak RSS is its kernel-kept high-water mark (VmHWM in /proc/PID/status), read
before and after the request: the figure is the growth over idle, as a multiple of the body.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import make_jupyter_home  # noqa: E402
from servers import ensure_anchor, start  # noqa: E402


def high_water_mark(pid: int) -> int:
    """VmHWM of ``pid`` in bytes: the peak RSS of the process so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def body_of(mb: int) -> bytes:
    line = "0123456789 abcdefghij ABCDEFGHIJ \"quoted\" \\ tab\t; unicode \u00e9\u6f22\n"
    text = line * (mb * 1024 * 1024 // len(line.encode()))
    return orjson.dumps({"type": "file", "format": "text", "content": text})


def measure(label: str, body: bytes, work: Path, env: dict[str, str], anchor: Path | None) -> tuple[float, float, float]:
    """(idle RSS MB, peak MB, peak growth / body size) of one PUT of ``body`` to a fresh server."""
    root = work / f"root-{label.replace(' ', '-')}"
    root.mkdir()
    server = start(label, root, env, work / "logs", anchor)
    try:
        idle = high_water_mark(server.pid)
        with httpx.Client(headers=server.headers, timeout=600) as client:
            response = client.put(server.url + "/api/contents/big.txt", content=body)
            response.raise_for_status()
        peak = high_water_mark(server.pid)
        assert (root / "big.txt").stat().st_size > 0
        return idle / 1e6, peak / 1e6, (peak - idle) / len(body)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=300)
    parser.add_argument("--targets", default="carme")
    args = parser.parse_args(argv)
    targets = args.targets.split(",")
    anchor = ensure_anchor() if any(t.startswith("jupyter") for t in targets) else None
    body = body_of(args.mb)
    with tempfile.TemporaryDirectory(prefix="carme-put-peak-") as tmp:
        work = Path(tmp)
        env = make_jupyter_home(work / "jupyter")
        print(f"| server | body (MB) | idle peak RSS (MB) | peak RSS (MB) | growth / body |")
        print("|---|---:|---:|---:|---:|")
        for label in targets:
            idle, peak, ratio = measure(label, body, work, env, anchor)
            print(f"| {label} | {len(body) / 1e6:.0f} | {idle:.0f} | {peak:.0f} | {ratio:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
