"""carme side by side with jupyter_server (the anchor) and a direct ZMQ client (the floor).

    .venv/bin/python bench/run.py            # everything, table to bench/results/latest.md
    .venv/bin/python bench/run.py --quick    # small smoke run
    .venv/bin/python bench/run.py --only rest --targets carme,jupyter_server
    .venv/bin/python bench/run.py --only relay   # the one-by-one relay rows alone (~3 min)

Every target serves the same fixture folder and launches the same kernel (ipykernel on this
interpreter, kernelspec ``benchpy``). Wall times come with the server's own CPU time (utime+stime
from /proc/PID/stat of the server process, kernels not included) since this machine is noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import Sizes, make_jupyter_home, make_root  # noqa: E402
from kernels import KernelPlan, Target, idle_rss  # noqa: E402
from kernelsuite import run_kernel_suite  # noqa: E402
from procstat import rss_bytes  # noqa: E402
from report import ANCHOR, CARME, DIRECT, EMBEDDED, NODELAY, render  # noqa: E402
from rest import RestPlan, run_rest  # noqa: E402
from results import Result  # noqa: E402
from servers import ServerProc, anchor_version, ensure_anchor, start  # noqa: E402

ALL_TARGETS = (DIRECT, CARME, EMBEDDED, ANCHOR, NODELAY)
REST_TARGETS = (CARME, ANCHOR)  # TCP_NODELAY on websockets changes nothing for plain HTTP


def plans(quick: bool) -> tuple[Sizes, RestPlan, KernelPlan]:
    if quick:
        return (Sizes(listing_files=300, notebook_mb=1),
                RestPlan(reps=1, clients=50, small_requests=500, listing_files=300),
                KernelPlan(start_reps=1, round_trips=20, print_mb=1, print_reps=1, flood=500, prints=300,
                           obo_clients=(1, 2), idle_kernels=2))
    return Sizes(), RestPlan(), KernelPlan()


async def bench_all(targets: list[str], root: Path, work: Path, env: dict[str, str], only: set[str],
                    rest_plan: RestPlan, kernel_plan: KernelPlan, anchor: Path | None) -> dict[str, dict[str, Result]]:
    """Start every server at once (same machine state), measure idle RSS, run the REST and kernel
    suites round-robin over them, then measure RSS with idle kernels on fresh servers.

    ``only``: rest, kernels (all kernel rows), relay (the one-by-one relay rows alone), rss (RSS
    with idle kernels)."""
    results: dict[str, dict[str, Result]] = {label: {} for label in targets}
    labels = [t for t in targets if t != DIRECT]
    servers: dict[str, ServerProc] = {}
    try:
        for label in labels:
            servers[label] = start(label, root, env, work / "logs", anchor)
        await asyncio.sleep(1.0)
        for label, server in servers.items():
            results[label]["rss_idle"] = Result(rss_bytes(server.pid) / 1e6, "MB")
        if "rest" in only:
            _log("REST")
            for label, res in (await run_rest({k: v for k, v in servers.items() if k in REST_TARGETS},
                                              rest_plan)).items():
                results[label] |= res
        if only & {"kernels", "relay"}:
            _log("kernels" if "kernels" in only else "relay")
            kernel_targets = {label: Target(servers.get(label), work, env, _plan_for(label, kernel_plan))
                              for label in targets}
            try:
                for label, res in (await run_kernel_suite(kernel_targets, "kernels" not in only)).items():
                    results[label] |= res
            finally:
                for target in kernel_targets.values():
                    await target.close()
    finally:
        for server in servers.values():
            server.stop()
    if "rss" in only:
        for label in labels:
            _log(f"idle kernels on a fresh {label}")
            server = start(label, root, env, work / "logs", anchor)
            target = Target(server, work, env, kernel_plan)
            try:
                results[label] |= await idle_rss(target)
            finally:
                await target.close()
                server.stop()
    return results


def _plan_for(label: str, plan: KernelPlan) -> KernelPlan:
    """The plan of one target: the anchor with TCP_NODELAY relays as the stock anchor does, so
    its one-by-one rows run with one client only (its column is about latency)."""
    if label in (NODELAY, DIRECT):
        return KernelPlan(**(asdict(plan) | {"obo_clients": (1,)}))
    return plan


def _load() -> str:
    """The 1-minute load average: how noisy the machine was (2 cores here)."""
    return Path("/proc/loadavg").read_text().split()[0]


def _log(text: str) -> None:
    print(f"bench: {time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small fixtures and few repetitions (smoke run)")
    parser.add_argument("--only", default="rest,kernels,rss",
                        help="comma list of: rest, kernels (every kernel row), relay (the one-by-one relay rows "
                             "alone), rss (RSS with idle kernels)")
    parser.add_argument("--targets", default=",".join(ALL_TARGETS), help="comma list of: " + ", ".join(ALL_TARGETS))
    parser.add_argument("--no-deflate", action="store_true",
                        help="do not offer permessage-deflate on kernel websockets (browsers do offer it)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "latest.md")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any benchmark failed to run")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    targets = [t for t in ALL_TARGETS if t in args.targets.split(",")]
    sizes, rest_plan, kernel_plan = plans(args.quick)
    if args.no_deflate:
        kernel_plan = KernelPlan(**(asdict(kernel_plan) | {"deflate": False}))

    load_start = _load()
    anchor = ensure_anchor() if any(t.startswith("jupyter") for t in targets) else None
    work = Path(tempfile.mkdtemp(prefix="carme-bench-"))
    results: dict[str, dict[str, Result]] = {}
    try:
        root = work / "root"
        make_root(root, sizes)
        env = make_jupyter_home(work / "jupyter")
        results = asyncio.run(bench_all(targets, root, work, env, only, rest_plan, kernel_plan, anchor))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    versions = f"; anchor {anchor_version(anchor)}" if anchor else ""
    header = (f"carme benchmarks ({'quick' if args.quick else 'full'} run, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"{platform.machine()}, Python {platform.python_version()}{versions}; kernel websockets "
              f"{'without' if args.no_deflate else 'offering'} permessage-deflate; anchor iopub rate limit off; "
              f"server CPU = utime+stime of the server process only (kernels not included), from /proc, "
              f"10 ms ticks; load average at start/end {load_start}/{_load()})")
    table = render(results, header, flood_n=kernel_plan.flood, prints_n=kernel_plan.prints, files=sizes.listing_files,
                   nb_mb=sizes.notebook_mb, print_mb=kernel_plan.print_mb)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    args.out.with_suffix(".json").write_text(json.dumps(
        {label: {k: asdict(v) for k, v in res.items()} for label, res in results.items()}, indent=1))
    failed = [f"{label}:{key}" for label, res in results.items() for key, r in res.items() if r.value is None]
    if failed:
        print("bench: failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if (args.strict and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
