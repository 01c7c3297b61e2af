"""The results table: one row per benchmark, one column per target, the ratio, target and verdict."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from results import Result

CARME, ANCHOR, NODELAY, DIRECT = "carme", "jupyter_server", "jupyter_server+nodelay", "direct ZMQ"
EMBEDDED = "carme embedded"  # the README's embedding snippet run with carme.run
COLUMNS = (DIRECT, CARME, EMBEDDED, ANCHOR, NODELAY)

Values = dict[str, float | None]


@dataclass(frozen=True)
class Row:
    """A table row: ``key`` in each target's results, ``field`` value or cpu_us; ``judge`` gives
    (ratio text, met) from the row's values, or None when the row has no target."""

    label: str
    key: str
    field: str = "value"
    target: str = ""
    judge: Callable[[Values], tuple[float, bool | None]] | None = None
    ratio_suffix: str = "x"


def _ratio(num: str, den: str, ok: Callable[[float], bool]) -> Callable[[Values], tuple[float, bool]]:
    def judge(values: Values) -> tuple[float, bool]:
        ratio = values[num] / values[den]  # type: ignore[operator]
        return ratio, ok(ratio)
    return judge


def _info(num: str, den: str) -> Callable[[Values], tuple[float, bool | None]]:
    """A ratio shown for reading, with no target."""
    return lambda values: (values[num] / values[den], None)  # type: ignore[operator]


def _flood_all(n: int) -> Callable[[Values], tuple[float, bool]]:
    def judge(values: Values) -> tuple[float, bool]:
        return values[CARME] / n * 100, values[CARME] == n  # type: ignore[operator]
    return judge


def rows(flood_n: int, files: int, nb_mb: float, print_mb: float, prints_n: int) -> list[Row]:
    """Every row of the table, REST (issue 2) first, then kernels (issue 3)."""
    faster = lambda x: x >= 5  # noqa: E731
    out = [
        Row(f"REST: list a directory of {files:,} files (ms)", "listing", target="jupyter_server/carme >= 5x",
            judge=_ratio(ANCHOR, CARME, faster)),
        Row("REST: server CPU per listing (us)", "listing", "cpu_us", "jupyter_server/carme", _info(ANCHOR, CARME)),
        Row(f"REST: GET ~{nb_mb:g} MB notebook (ms)", "nb_get", target="jupyter_server/carme >= 1.5x",
            judge=_ratio(ANCHOR, CARME, lambda x: x >= 1.5)),
        Row("REST: server CPU per GET (us)", "nb_get", "cpu_us", "jupyter_server/carme", _info(ANCHOR, CARME)),
        Row(f"REST: PUT ~{nb_mb:g} MB notebook (ms)", "nb_put", target="jupyter_server/carme >= 1.5x",
            judge=_ratio(ANCHOR, CARME, lambda x: x >= 1.5)),
        Row("REST: server CPU per PUT (us)", "nb_put", "cpu_us", "jupyter_server/carme", _info(ANCHOR, CARME)),
        Row("REST: 50 clients reading a small file (req/s)", "small_rps", target="carme/jupyter_server >= 2x",
            judge=_ratio(CARME, ANCHOR, lambda x: x >= 2)),
        Row("REST: server CPU per small-file request (us)", "small_rps", "cpu_us",
            target="carme/jupyter_server < 0.5x", judge=_ratio(CARME, ANCHOR, lambda x: x < 0.5)),
        Row("REST: server RSS idle (MB)", "rss_idle", target="carme/jupyter_server < 0.7x",
            judge=_ratio(CARME, ANCHOR, lambda x: x < 0.7)),
        Row("kernel start to first kernel_info_reply (ms)", "k_start", target="carme/direct <= 1.1x",
            judge=_ratio(CARME, DIRECT, lambda x: x <= 1.1)),
    ]
    for proto in ("v1", "legacy"):
        out += [
            Row(f"[{proto}] execute `pass` round trip p50 (ms)", f"rt50_{proto}", target="carme/direct <= 1.2x",
                judge=_ratio(CARME, DIRECT, lambda x: x <= 1.2)),
            Row(f"[{proto}] execute `pass` round trip p99 (ms)", f"rt99_{proto}"),
            Row(f"[{proto}] server CPU per relayed message, round trips (us)", f"rt50_{proto}", "cpu_us",
                target="jupyter_server/carme", judge=_info(ANCHOR, CARME)),
            Row(f"[{proto}] one {print_mb:g} MB print (MB/s)", f"print_{proto}", target="carme/jupyter_server",
                judge=_info(CARME, ANCHOR)),
            Row(f"[{proto}] server CPU per {print_mb:g} MB print (us)", f"print_{proto}", "cpu_us",
                target="jupyter_server/carme", judge=_info(ANCHOR, CARME)),
            Row(f"[{proto}] {flood_n:,} small stream messages (msg/s)", f"flood_{proto}",
                target="carme/jupyter_server", judge=_info(CARME, ANCHOR)),
            Row(f"[{proto}] ... of which arrived", f"flood_n_{proto}", target=f"all {flood_n:,}",
                judge=_flood_all(flood_n), ratio_suffix="%"),
            Row(f"[{proto}] server CPU per relayed message, burst (us)", f"flood_{proto}", "cpu_us",
                target="carme < 40 us", judge=lambda v: (v[CARME] / 40, v[CARME] < 40)),  # type: ignore[operator]
            Row(f"[{proto}] {prints_n:,} prints one by one (msg/s)", f"obo_{proto}", target="carme/jupyter_server",
                judge=_info(CARME, ANCHOR)),
            Row(f"[{proto}] server CPU per relayed message, one by one (us)", f"obo_{proto}", "cpu_us",
                target="carme <= 40 us", judge=lambda v: (v[CARME] / 40, v[CARME] <= 40)),  # type: ignore[operator]
            Row(f"[{proto}] ... with 2 clients of the kernel (us)", f"obo2_{proto}", target="jupyter_server/carme",
                judge=_info(ANCHOR, CARME)),
            Row(f"[{proto}] ... with 4 clients of the kernel (us)", f"obo4_{proto}", target="jupyter_server/carme",
                judge=_info(ANCHOR, CARME)),
            Row(f"[{proto}] ... each further client: slope over 1, 2, 4 clients (us per message)",
                f"obo_extra_{proto}", target="carme <= 10 us",
                judge=lambda v: (v[CARME] / 10, v[CARME] <= 10)),  # type: ignore[operator]
            Row(f"[{proto}] ... stream messages the clients missed (all rounds)", f"obo_lost_{proto}", target="carme: none",
                judge=lambda v: (v[CARME], v[CARME] == 0), ratio_suffix=""),  # type: ignore[operator]
        ]
    out += [
        Row("server RSS with 20 idle kernels (MB)", "rss20", target="carme/jupyter_server < 0.7x",
            judge=_ratio(CARME, ANCHOR, lambda x: x < 0.7)),
        Row("... server + kernels RSS (MB)", "rss20_tree"),
    ]
    return out


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if value == int(value) and abs(value) < 100:  # a count (messages missed)
        return str(int(value))
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _lookup(results: dict[str, dict[str, Result]], column: str, row: Row) -> tuple[float | None, str]:
    table = results.get(column, {})
    key = row.key
    if column == DIRECT and key.startswith(("rt", "print_", "flood", "obo_v1", "obo_legacy")):
        key = key.rsplit("_", 1)[0] + "_zmq"
    result = table.get(key)
    if result is None:
        return None, ""
    value = result.value if row.field == "value" else result.cpu_us
    return value, ("" if result.value is not None else result.note)


def render(results: dict[str, dict[str, Result]], header: str, **sizes: float) -> str:
    """The markdown table (plus failure notes) for everything in ``results``."""
    lines = [header, "", "| benchmark | " + " | ".join(COLUMNS) + " | ratio | target | met? |",
             "|---|" + "---:|" * len(COLUMNS) + "---:|---|:---:|"]
    notes: list[str] = []
    for row in rows(**sizes):  # type: ignore[arg-type]
        values: Values = {}
        cells = []
        for column in COLUMNS:
            value, failure = _lookup(results, column, row)
            values[column] = value
            if failure and row.field == "value":
                notes.append(f"- {column}, {row.label}: {failure}")
            cells.append(_fmt(value) if value is not None else ("failed" if failure else "–"))
        ratio, met = "", ""
        if row.judge is not None:
            try:
                number, ok = row.judge(values)
                ratio = (f"{number:.2f}x" if row.ratio_suffix == "x" else f"{number:.1f}%" if row.ratio_suffix == "%"
                         else "")
                met = "" if ok is None else "yes" if ok else "**no**"
            except (TypeError, ZeroDivisionError):
                pass
        if all(c == "–" for c in cells):
            continue
        lines.append(f"| {row.label} | " + " | ".join(cells) + f" | {ratio} | {row.target} | {met} |")
    if notes:
        lines += ["", "Failures:", *notes]
    return "\n".join(lines) + "\n"
