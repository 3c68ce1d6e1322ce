"""`gitxp report`: one self-contained HTML file of an experiment, to attach anywhere.

The file holds everything it needs: plotly.js and the page's own scripts
inlined, the data as JSON in a ``<script type="application/json">`` block.
It opens offline; its Content-Security-Policy allows no network at all and
only the inline scripts it was written with (by hash), so a run name or
note cannot smuggle code in, and the page escapes every string anyway.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import logging
import os
import re
from typing import Any

from ..errors import CorruptRunError, GitxpError
from .jsonable import compact_json, json_safe
from .views import UIData

MAX_RUNS = 200
POINTS = 1000
_log = logging.getLogger("gitxp.present.report")


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: no `</script>`, `<!--` or line separators."""
    text = compact_json(json_safe(value))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def script_code(code: str) -> str:
    """JavaScript source made safe to inline: it cannot close its <script> element early."""
    code = re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)
    return code.replace("<!--", "<\\!--")


def _csp_hash(code: str) -> str:
    digest = hashlib.sha256(code.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


def collect(
    data: UIData,
    experiment: str | None = None,
    filter: str | None = None,
    max_runs: int = MAX_RUNS,
    points: int = POINTS,
) -> dict[str, Any]:
    """The report's data: the selected runs' rows and each metric's downsampled series."""
    page = data.runs(filter=filter, experiment=experiment, limit=max_runs)
    rows = page["rows"]
    if not rows:
        where = f" in experiment {experiment!r}" if experiment else ""
        raise GitxpError(
            f"no runs to report{where}"
            + (f" matching {filter!r}" if filter else "")
            + "; list them with `gitxp log`"
        )
    series: dict[str, dict[str, Any]] = {}
    skipped: list[dict[str, str]] = []
    kept = []
    for row in rows:
        # a run that cannot be read (CORRUPT, or a damaged metric part) is left out of
        # the report, with one warning each, rather than failing the whole report
        reason = row.get("corrupt")
        try:
            for key in [] if reason else row.get("metrics") or {}:
                s = data.series(row["id"], key, points=points)
                series.setdefault(row["id"], {})[key] = {
                    "step": s["step"],
                    "value": s["value"],
                    "total": s["total"],
                }
        except CorruptRunError as exc:
            reason = exc.reason
        if reason:
            series.pop(row["id"], None)
            skipped.append({"id": row["id"], "reason": reason})
            _log.warning("gitxp report: skipped run %s: %s", row["id"], reason)
        else:
            kept.append(row)
    rows = kept
    repo = data.repo
    return {
        "title": experiment or os.path.basename(repo.path),
        "repo": repo.path,
        "experiment": experiment,
        "filter": filter,
        "generated": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "total": page["total"],
        "truncated": page["total"] > len(page["rows"]),
        "columns": page["columns"],
        "runs": rows,
        "skipped": skipped,
        "series": series,
    }


def render(payload: dict[str, Any]) -> str:
    """The HTML text of a report holding *payload*."""
    from .assets import STATIC_DIR, plotly_js

    def read(name: str) -> str:
        with open(os.path.join(STATIC_DIR, name), encoding="utf-8") as f:
            return f.read()

    scripts = [
        script_code(plotly_js().data.decode("utf-8")),
        script_code(read("common.js")),
        script_code(read("report.js")),
    ]
    from .. import __version__

    csp = (
        "default-src 'none'; img-src data: blob:; style-src 'unsafe-inline'; "
        f"script-src 'unsafe-eval' {' '.join(_csp_hash(s) for s in scripts)}; "
        "base-uri 'none'; form-action 'none'"
    )
    title = html.escape(f"gitxp report: {payload['title']}")
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{html.escape(csp)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f'<meta name="generator" content="gitxp {html.escape(__version__)}">',
            f"<title>{title}</title>",
            f"<style>{read('app.css')}</style>",
            "</head><body>",
            '<header class="top"><span class="brand">git<b>xp</b></span>'
            '<nav class="crumbs"><span>Report</span></nav><span class="spacer"></span>'
            '<span id="repo" class="repo mono"></span></header>',
            '<main id="main"></main>',
            f'<script type="application/json" id="gitxp-data">{script_json(payload)}</script>',
            *(f"<script>{s}</script>" for s in scripts),
            "</body></html>",
        ]
    )


def report(
    path: str | os.PathLike[str] = ".",
    experiment: str | None = None,
    out: str | os.PathLike[str] = "report.html",
    filter: str | None = None,
    max_runs: int = MAX_RUNS,
    points: int = POINTS,
) -> str:
    """Write a self-contained HTML report of the runs of *experiment* (default: all) to *out*.

    Returns the path written. At most *max_runs* runs (newest first, or as
    *filter* selects) and *points* points per curve, so the file stays small.
    """
    from ..store.repo import open as open_repo

    with open_repo(path) as repo:
        payload = collect(UIData(repo), experiment, filter, max_runs, points)
    text = render(payload)
    target = os.fspath(out)
    tmp = f"{target}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, target)
    return target
