"""`cnnlab experiment all`'s closing summary: one table of verdicts and one sheet of the plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

from cnnlab.checkpoint import atomic_write_text
from cnnlab.experiments.result import open_parts
from cnnlab.viz.plots import pyplot, save_figure


def cell(key: str, value) -> str:
    """A table cell: errors and shares as percentages, spreads in points, counts with separators."""
    if value is None:
        return "-"
    if isinstance(value, (bool, str)):
        return str(value)
    if key.endswith("_spread"):
        return f"{100 * value:.2f} pts"
    if "error" in key or key.endswith("_share") or key.endswith("_gap"):
        return f"{100 * value:.2f}%" if "gap" not in key else f"{100 * value:.2f} pts"
    if isinstance(value, float):
        return f"{value:,.3g}" if value < 1000 else f"{value:,.0f}"
    return f"{value:,}"


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def section(record: dict) -> list[str]:
    """One experiment as markdown: the command, the budget, the table, the verdict and the plot."""
    flag = {"quick": " --quick", "long": " --long", "full": " --full"}.get(record["tier"], "")
    data = "" if record["data"] == "fashion-mnist" else f" --data {record['data']}"
    rows = record["rows"]
    lines = [f"## {record['experiment']}", "", "```bash", f"cnnlab experiment {record['experiment']}{flag}{data}", "```", "",
             f"Budget ({record['tier']}, seeds {', '.join(map(str, record['seeds']))}): {record['budget']}; "
             f"{duration(record['seconds'])} " + (f"on {record['machine']}." if "machine" in record else "here."), ""]
    if rows:
        columns = list(rows[0])
        lines += ["| " + " | ".join(c.replace("_", " ") for c in columns) + " |",
                  "|" + "|".join("---" if isinstance(rows[0][c], str) else "---:" for c in columns) + "|"]
        lines += ["| " + " | ".join(cell(c, row.get(c)) for c in columns) + " |" for row in rows]
    reason = record["reason"][:1].upper() + record["reason"][1:]
    lines += ["", f"Claim: {record['claim']}.", "", f"**Verdict: {record['verdict']}.** {reason}.", ""]
    return lines


def write_summary(records: list[dict], out: Path) -> list[Path]:
    """OUT/summary.md (the verdict table: the budget each verdict was decided at and what of its
    claim is still open; each plot linked), summary.json and summary.png."""

    lines = ["# The seeds' claims, decided", "",
             f"Budget: {records[0]['tier']}; data: {records[0]['data']}; seeds: "
             f"{', '.join(map(str, records[0]['seeds']))}.", "",
             "| experiment | verdict | decided at | still open | claim | what decides it | time |",
             "|---|---|---|---|---|---|---:|"]
    for record in records:
        reason = record["reason"].replace("|", "/")
        still_open = "; ".join(open_parts(record)) or "-"
        lines.append(f"| {record['experiment']} | **{record['verdict']}** | {record['tier']}: {record['budget']} | "
                     f"{still_open} | {record['claim']} | {reason} | {duration(record['seconds'])} |")
    undecided = [record["experiment"] for record in records if record["verdict"] == "not decided at this budget"]
    if undecided:
        lines += ["", f"Not decided at this budget (a half of the claim left open; each says which budget decides it): "
                      f"{', '.join(undecided)}."]
    lines.append("")
    for record in records:
        lines += section(record)
        if (out / f"{record['experiment']}.png").exists():
            lines += [f"![{record['experiment']}]({record['experiment']}.png)", ""]
    paths = [out / "summary.md", out / "summary.json"]
    atomic_write_text(paths[0], "\n".join(lines) + "\n")
    atomic_write_text(paths[1], json.dumps([{**{key: record[key] for key in ("experiment", "tier", "data", "verdict", "claim",
                                                                             "reason", "budget", "seconds")},
                                             "open": open_parts(record)} for record in records], indent=2))
    images = [out / f"{record['experiment']}.png" for record in records if (out / f"{record['experiment']}.png").exists()]
    if images:
        plt = pyplot()
        columns = 3
        rows = math.ceil(len(images) / columns)
        figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.6 * rows), squeeze=False)
        for axis in axes.flat:
            axis.axis("off")
        for axis, image, record in zip(axes.flat, images, [r for r in records if (out / f"{r['experiment']}.png").exists()]):
            axis.imshow(plt.imread(image))
            axis.set_title(f"{record['experiment']}: {record['verdict']}", fontsize=10)
        paths.append(save_figure(figure, out / "summary.png", dpi=90))
    return paths
