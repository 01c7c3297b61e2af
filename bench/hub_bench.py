"""carme vs jupyterhub-singleuser as the single-user server of one real JupyterHub.

One JupyterHub 6.1 with configurable-http-proxy (the tests' own set-up, tests/hub/hubenv.py, in a
throwaway venv of its own, ``bench/.anchor-hub-env``, which also holds the anchor: jupyter_server
2.21 and JupyterLab 4.6 behind ``jupyterhub-singleuser``). Users named ``carme*`` get
``carme singleuser`` (carme with its bundled extensions, JupyterLab among them), users named
``anchor*`` get ``jupyterhub-singleuser``; same spawner, same hub, rounds alternate:

- spawn to ready: from the POST that starts a user's server to the hub saying it is ready (what a
  user waits for after "Start My Server"; the hub's own readiness polling is in both);
- idle RSS per user: the server's process tree (no kernel) after it answered its JupyterLab page
  and /api/status once and then sat idle for a few seconds.

    python bench/hub_bench.py [--rounds 5] [--out bench/results/hub.md]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from procstat import tree_rss  # noqa: E402
from results import median  # noqa: E402

from tests.hub.hubenv import HUB_REQUIREMENTS, Hub, auth, ensure_hub_env, start_hub  # noqa: E402

ANCHOR_ENV = HERE / ".anchor-hub-env"
ANCHOR_REQUIREMENTS = [*HUB_REQUIREMENTS, "jupyter_server==2.21.1", "jupyterlab==4.6.6"]
SETTLE_S = 3.0
LABELS = ("carme", "jupyterhub-singleuser")


def per_user_command(anchor_singleuser: Path) -> str:
    """Hub config: ``anchor*`` users get jupyterhub-singleuser, the others the default (carme)."""
    return f"""
def _anchor_for_anchor_users(spawner):
    if spawner.user.name.startswith("anchor"):
        spawner.cmd = [{str(anchor_singleuser)!r}, "--allow-root"]  # the bench may run as root
c.Spawner.pre_spawn_hook = _anchor_for_anchor_users
c.Spawner.http_timeout = 120
c.Spawner.start_timeout = 180
# The POST answers 202 at once and the bench polls (past 10 s, JupyterHub 6.1 can answer 500 to a
# POST whose spawn is still going: "InvalidStateError: Exception is not set").
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
"""


def spawn(hub: Hub, name: str) -> tuple[float, int]:
    """Start ``name``'s server: seconds to ready, and its RSS once idle."""
    hub.api.post(f"/users/{name}").raise_for_status()
    started = time.perf_counter()
    response = hub.api.post(f"/users/{name}/server")
    assert response.status_code in (201, 202), response.text
    deadline = started + 300
    while not (hub.server_model(name) or {}).get("ready"):
        if time.perf_counter() > deadline or hub.server_model(name) is None:
            log = hub.process.output()[-6000:]
            raise RuntimeError(f"{name}'s server did not become ready; the hub's log ends with:\n{log}")
        time.sleep(0.02)
    ready = time.perf_counter() - started
    pid = int(hub.server_model(name)["state"]["pid"])  # type: ignore[index]
    token = hub.token(name)
    with httpx.Client(base_url=f"{hub.url}/user/{name}/", headers=auth(token), timeout=120) as client:
        client.get("lab").raise_for_status()
        client.get("api/status").raise_for_status()
    time.sleep(SETTLE_S)  # idle means: after the work, with whatever the server does at rest
    return ready, tree_rss(pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "hub.md")
    args = parser.parse_args()
    env = ensure_hub_env(ANCHOR_ENV, ANCHOR_REQUIREMENTS)
    ready: dict[str, list[float]] = {label: [] for label in LABELS}
    rss: dict[str, list[float]] = {label: [] for label in LABELS}
    with tempfile.TemporaryDirectory(prefix="carme-hub-bench-") as home:
        hub = start_hub(Path(home), config=per_user_command(env[0].parent / "jupyterhub-singleuser"), env=env)
        try:
            for label in LABELS:  # not counted: the first start of each compiles its bytecode
                name = f"{'carme' if label == 'carme' else 'anchor'}-warmup"
                spawn(hub, name)
                hub.stop_server(name)
            for round_ in range(args.rounds):
                order = LABELS if round_ % 2 == 0 else LABELS[::-1]
                for label in order:
                    name = f"{'carme' if label == 'carme' else 'anchor'}{round_}"
                    seconds, memory = spawn(hub, name)
                    ready[label].append(seconds * 1000)
                    rss[label].append(memory / 2**20)
                    hub.stop_server(name)
                    print(f"round {round_} {label}: ready {seconds * 1000:.0f} ms, idle RSS {memory / 2**20:.1f} MB",
                          file=sys.stderr)
        finally:
            hub.stop()
    rows = [("hub: spawn to ready (ms)", ready, "carme/jupyterhub-singleuser <= 0.7x"),
            ("hub: idle RSS per user, server process tree (MB)", rss, "carme/jupyterhub-singleuser <= 0.7x")]
    lines = [f"Hub bench, {time.strftime('%Y-%m-%d')}, {platform.machine()}, Python {platform.python_version()}, "
             f"JupyterHub 6.1.1, jupyter_server 2.21.1 + JupyterLab 4.6.6 behind jupyterhub-singleuser; "
             f"medians of {args.rounds} alternating rounds after one warm-up start of each.", "",
             "| benchmark | carme | jupyterhub-singleuser | ratio | target | met? |", "|---|---:|---:|---:|---|:---:|"]
    for title, values, target in rows:
        ours, theirs = median(values["carme"]), median(values["jupyterhub-singleuser"])
        ratio = ours / theirs
        lines.append(f"| {title} | {ours:,.1f} | {theirs:,.1f} | {ratio:.2f}x | {target} | "
                     f"{'yes' if ratio <= 0.7 else '**no**'} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
