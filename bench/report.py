"""Results: latest.json (everything measured), latest.md (the table with the targets of
issue 9 beside each figure) and two plots (latency against offered rate, memory against
sockets)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

REQUIRED_KEYS = ("meta", "live", "idle", "dispatcher", "ratios", "missing")


def ratios(live: dict[str, Any]) -> dict[str, Any]:
    """Each system's saturation against the limit's and the floor's."""
    out: dict[str, Any] = {}
    limit = live.get("limit", {}).get("saturation_per_s")
    floor = live.get("floor", {}).get("saturation_per_s")
    for name, result in live.items():
        rate = result.get("saturation_per_s")
        out[name] = {
            "to_limit": rate / limit if rate and limit else None,
            "to_floor": rate / floor if rate and floor else None,
        }
    return out


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _kib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} KiB"


def _live_row(name: str, results: dict[str, Any]) -> str:
    live = results["live"].get(name, {})
    idle = results["idle"].get(name, {})
    ratio = results["ratios"].get(name, {})
    flags = list(live.get("notes", []))
    if live.get("client_bound"):
        flags.append("load client near 100% CPU")
    if live.get("load_core_bound"):
        flags.append("load core (client, publisher, Redis) near 100%")
    if live and not live.get("saturated"):
        flags.append("not saturated within the ladder")
    overload = live.get("overload")
    if overload:
        flags.append(
            f"offered {overload['rate']:,.0f}/s: delivered {overload['delivered_per_s']:,.0f}/s"
        )
    if live and not live.get("pinned", True):  # on every core: their busy share in all
        flags.append(
            f"server CPU {live['server_cpu_at_saturation']:.0%} of "
            f"{len(live['ladder'][0]['cores_busy'])}00% at saturation"
            f" (all cores busy {live.get('cores_busy_at_saturation', 0):.0%} in all)"
        )
    elif live:
        flags.append(
            f"server CPU {live['server_cpu_at_saturation']:.0%} at saturation"
            f" (core 0 busy {live.get('server_core_busy_at_saturation', 0):.0%} in all)"
        )
    label = live.get("label") or idle.get("label") or name
    connect = (
        f"{_num(idle.get('connected'))} in {_num(idle.get('connect_seconds'), 1)} s"
        if idle
        else "-"
    )
    return (
        f"| {label} | {_num(live.get('saturation_per_s'))} "
        f"| {_num(live.get('per_server_core_s'))} "
        f"| {_num(live.get('p50_ms'), 2)} / {_num(live.get('p99_ms'), 2)} "
        f"| {_kib(idle.get('rss_per_socket_kib'))} | {connect} "
        f"| {_num(ratio.get('to_limit'), 2)} | {_num(ratio.get('to_floor'), 2)} "
        f"| {'; '.join(flags) or 'ok'} |"
    )


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"Measured {meta['date']} on {meta['machine']} with `{meta['command']}` "
        f"(profile `{meta['profile']}`, commit {meta['commit']}"
        + (
            f", with uncommitted changes to {', '.join(meta['uncommitted'])}"
            if meta.get("uncommitted")
            else ""
        )
        + f"). {meta['noise']}",
        "",
        "| system | delivered/s at saturation | per server CPU-second "
        "| p50 / p99 ms at half load | RSS per idle socket | sockets connected in "
        "| x limit | x floor | notes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    names = list(dict.fromkeys([*results["live"], *results["idle"]]))
    lines += [_live_row(name, results) for name in names]
    dispatcher = results["dispatcher"]
    if dispatcher:
        single = dispatcher["singles"]
        lat = single["latency_ms"]
        bulk = dispatcher["bulk"]
        lines += [
            "",
            "| dispatcher | figure | target (issue 9) |",
            "| --- | --- | --- |",
            f"| single sends at concurrency {single['concurrency']} "
            f"| {_num(single['sends_per_s'])}/s, p50 {_num(lat['p50'], 1)} ms, "
            f"p99 {_num(lat['p99'], 1)} ms | ≥ 6,000/s, p99 ≤ 20 ms |",
            f"| one bulk request to {bulk['users']:,} users "
            f"| {_num(bulk['notifications_per_s'])} notifications/s | ≥ 100,000/s |",
        ]
    lines += _resume_rows(results.get("resume"))
    lines += ["", "Targets (issue 9): " + TARGETS]
    if results["missing"]:
        lines += ["", "Not measured in this profile: " + "; ".join(results["missing"]) + "."]
    return "\n".join(lines) + "\n"


def _resume_rows(resume: dict[str, Any] | None) -> list[str]:
    if not resume:
        return []
    storm, deep = resume["storm"], resume["one_user"]
    return [
        "",
        "| resume | figure | target (issue 9) |",
        "| --- | --- | --- |",
        f"| reconnect storm: {storm['tabs']:,} tabs drop, each resumes {storm['missed_each']} "
        f"| all whole in {_num(storm['whole_in_seconds'], 1)} s, lost {storm['lost']}, "
        f"gaps {storm.get('gaps', '-')}, duplicates {storm.get('duplicates', '-')}, "
        f"failed {storm['failed']} | ≤ 8 s, zero loss |",
        f"| one user resuming {deep['notifications']:,} "
        f"| whole in {_num(deep['whole_in_seconds'], 2)} s, lost {deep['lost']} | zero loss |",
    ]


TARGETS = (
    "Tocsin ≥ 2x the floor and ≥ 0.55x the limit at saturation; p99 ≤ 5 ms at half load; "
    "≤ 20 KiB RSS per idle socket; 19,500 sockets connected in ≤ 20 s; zero loss."
)


def _by_rate(steps: list[dict[str, Any]]) -> list[tuple[float, float, float]]:
    """(offered rate, median p50, median p99) for each offered rate, lowest first."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for step in steps:
        if step["latency_ms"]["p50"] is not None:
            groups.setdefault(round(step["rate"]), []).append(step)
    return [
        (
            float(rate),
            statistics.median(s["latency_ms"]["p50"] for s in group),
            statistics.median(s["latency_ms"]["p99"] for s in group),
        )
        for rate, group in sorted(groups.items())
    ]


def plots(results: dict[str, Any], out: Path) -> list[str]:
    """PNG plots (matplotlib, Agg); none when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, NullFormatter
    except ImportError:
        return []
    made = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, live in results["live"].items():
        repeats = [s for s in live["saturation_steps"] if s not in live["ladder"]]
        points = _by_rate([*live["ladder"], *repeats, *live["half_steps"]])
        rates = [rate for rate, _, _ in points]
        (line,) = ax.plot(rates, [p99 for _, _, p99 in points], "o-", label=f"{name} p99")
        p50s = [p50 for _, p50, _ in points]
        ax.plot(rates, p50s, "x--", color=line.get_color(), label=f"{name} p50")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="offered publishes/s (frames/s at 1 tab per user)",
        ylabel="latency, ms",
        title="Live delivery latency against offered rate",
    )
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "latency_vs_rate.png", dpi=110)
    made.append("latency_vs_rate.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, idle in results["idle"].items():
        points = idle["points"]
        ax.plot(
            [p["sockets"] for p in points], [p["rss"] / 2**20 for p in points], "o-", label=name
        )
    ax.set(xlabel="idle sockets", ylabel="server RSS, MiB", title="Memory against sockets")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "memory_vs_sockets.png", dpi=110)
    made.append("memory_vs_sockets.png")
    plt.close(fig)
    return made


def write(results: dict[str, Any], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    results["ratios"] = ratios(results["live"])
    results["plots"] = plots(results, out)
    (out / "latest.json").write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    table = markdown(results)
    (out / "latest.md").write_text(table)
    return table


README_START = "<!-- bench:start (written by `make bench`) -->"
README_END = "<!-- bench:end -->"


def update_readme(readme: Path, table: str) -> bool:
    """Put the table between the README's bench markers; False when they are missing."""
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    head = text[: start + len(README_START)]
    readme.write_text(f"{head}\n{table}{text[end:]}")
    return True
