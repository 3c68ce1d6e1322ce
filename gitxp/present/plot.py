"""`gitxp plot`: one metric of one or more runs, as a PNG or as a text sparkline.

The PNG uses matplotlib (optional extra `gitxp[plot]`), drawn from the same
shape-preserving downsampled series as the web UI, so a 10M-point run plots
in a moment. The sparkline needs nothing but the terminal.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import GitxpError, InvalidValueError, MissingExtraError

if TYPE_CHECKING:
    from ..store.record import RunRecord

SPARK = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Curve:
    """One run's points of one metric (downsampled), ready to draw."""

    run_id: str
    name: str
    key: str
    steps: list[int]
    values: list[float]
    total: int


def curves(
    path: str | os.PathLike[str], runs: Sequence[str], metric: str, points: int = 2000
) -> list[Curve]:
    """Read *metric* of each run in *runs* (ids, prefixes or names), downsampled; the
    runs are read together, in one bulk read (`Repo.metrics`)."""
    from ..store.repo import open as open_repo
    from .views import UIData

    if not runs:
        raise InvalidValueError("runs", "name at least one run to plot")
    with open_repo(path) as repo:
        records: dict[str, RunRecord] = {}
        for ref in runs:
            record = repo.run(ref)
            records.setdefault(record.id, record)
        answer = UIData(repo).series_many(list(records), metric, points=points)
    return [
        Curve(s["run"], records[s["run"]].name, metric, s["step"], s["value"], s["total"])
        for s in answer["series"]
    ]


def sparkline(values: Sequence[float], width: int = 60) -> str:
    """*values* as a line of block characters, *width* wide (bucket means)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    if len(finite) > width:
        size = len(finite) / width
        finite = [
            sum(chunk) / len(chunk)
            for i in range(width)
            if (chunk := finite[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)])
        ]
    lo, hi = min(finite), max(finite)
    span = hi - lo
    if span == 0:
        return SPARK[len(SPARK) // 2] * len(finite)
    return "".join(SPARK[min(len(SPARK) - 1, int((v - lo) / span * len(SPARK)))] for v in finite)


def text_plot(found: list[Curve], width: int = 60) -> str:
    """One line per run: name, sparkline, first → last value, min and max."""
    from .output import fmt_value

    label = max(len(c.name or c.run_id[:12]) for c in found)
    lines = [f"{found[0].key}"]
    for c in found:
        vals = [v for v in c.values if math.isfinite(v)]
        if not vals:
            lines.append(f"{(c.name or c.run_id[:12]).ljust(label)}  (no finite values)")
            continue
        lines.append(
            f"{(c.name or c.run_id[:12]).ljust(label)}  {sparkline(vals, width)}  "
            f"{fmt_value(vals[0])} → {fmt_value(vals[-1])}  "
            f"(min {fmt_value(min(vals))}, max {fmt_value(max(vals))}, {c.total:,} points)"
        )
    return "\n".join(lines)


def plot(
    path: str | os.PathLike[str],
    runs: Sequence[str],
    metric: str,
    out: str | os.PathLike[str] | None = None,
    logy: bool = False,
    title: str | None = None,
    dpi: int = 150,
) -> str:
    """Plot *metric* of *runs*: a PNG/SVG/PDF at *out*, or a sparkline text when *out* is None.

    Returns the path written, or the text.
    """
    found = curves(path, runs, metric)
    if out is None:
        return text_plot(found)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError("gitxp plot --out", "matplotlib", "plot") from None
    fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    for c in found:
        # a `$` would start matplotlib's mathtext: names are shown literally
        label = (c.name or c.run_id[:12]).replace("$", r"\$")
        if len(c.steps) == 1:
            ax.plot(c.steps, c.values, "o", label=label)
        else:
            ax.plot(c.steps, c.values, linewidth=1.3, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    if logy:
        ax.set_yscale("log")
    ax.grid(True, color="#e5e7eb", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title)
    if len(found) > 1:
        ax.legend(frameon=False, fontsize=8)
    target = os.fspath(out)
    try:
        fig.savefig(target, dpi=dpi)
    except (OSError, ValueError) as exc:
        raise GitxpError(f"cannot write {target}: {exc}") from None
    finally:
        plt.close(fig)
    return target
