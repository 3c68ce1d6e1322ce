"""`gitxp log`: the runs, newest first, like `git log` of experiments."""

from __future__ import annotations

import io
import sys
from typing import Any

import click

from ..present.output import (
    dump_json,
    fmt_duration,
    fmt_short_time,
    fmt_status,
    fmt_time,
    fmt_value,
    render_table,
)
from ._options import format_option, open_repo, repo_option


def json_row(row: dict[str, Any]) -> dict[str, Any]:
    """The stable JSON object of one run in `gitxp log --format json`."""
    from ..store.query import public_row

    return public_row(row)


def _inline(values: dict[str, Any], limit: int = 8) -> str:
    items = [f"{k}={fmt_value(v)}" for k, v in list(values.items())[:limit]]
    if len(values) > limit:
        items.append(f"(+{len(values) - limit} more)")
    return "  ".join(items)


def _log_entry(row: dict[str, Any], color: bool) -> str:
    head = click.style(f"run {row['id']}", fg="yellow") if color else f"run {row['id']}"
    code = (row.get("code_commit") or "-")[:12]
    if row.get("dirty"):
        code += " (snapshot of uncommitted changes)"
    lines = [
        head,
        f"Name:       {row.get('name')}",
        f"Experiment: {row.get('experiment')}",
        f"Status:     {fmt_status(row['status'], color)}  ({fmt_duration(row.get('duration'))})",
        f"Date:       {fmt_time(row.get('start_time'))}",
        f"Code:       {code}",
    ]
    if row.get("params"):
        lines.append(f"Params:     {_inline(row['params'])}")
    if row.get("metrics"):
        lines.append(f"Metrics:    {_inline(row['metrics'])}")
    if row.get("tags"):
        lines.append(f"Tags:       {_inline(row['tags'])}")
    return "\n".join(lines)


def _oneline(row: dict[str, Any], color: bool) -> str:
    rid = click.style(row["id"][:12], fg="yellow") if color else row["id"][:12]
    status = fmt_status(f"{row['status']:<8}", color)
    metrics = _inline(row.get("metrics") or {}, limit=4)
    return f"{rid} {status} {row.get('experiment')}/{row.get('name')}  {metrics}".rstrip()


def _table(rows: list[dict[str, Any]]) -> str:
    param_keys = sorted({k for r in rows for k in (r.get("params") or {})})
    metric_keys = sorted({k for r in rows for k in (r.get("metrics") or {})})
    headers = ["id", "name", "experiment", "status", "started", "duration"]
    headers += [f"params.{k}" for k in param_keys] + [f"metrics.{k}" for k in metric_keys]
    body = []
    for r in rows:
        cells = [
            r["id"][:12],
            str(r.get("name")),
            str(r.get("experiment")),
            r["status"],
            fmt_short_time(r.get("start_time")),
            fmt_duration(r.get("duration")),
        ]
        cells += [fmt_value((r.get("params") or {}).get(k)) for k in param_keys]
        cells += [fmt_value((r.get("metrics") or {}).get(k)) for k in metric_keys]
        body.append(cells)
    return render_table(headers, body)


def _csv(rows: list[dict[str, Any]]) -> str:
    import csv  # only for --format csv

    param_keys = sorted({k for r in rows for k in (r.get("params") or {})})
    metric_keys = sorted({k for r in rows for k in (r.get("metrics") or {})})
    tag_keys = sorted({k for r in rows for k in (r.get("tags") or {})})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    base = ["id", "name", "experiment", "status", "start_time", "end_time", "code_commit"]
    writer.writerow(
        base
        + [f"params.{k}" for k in param_keys]
        + [f"metrics.{k}" for k in metric_keys]
        + [f"tags.{k}" for k in tag_keys]
    )
    for r in rows:
        line = [r.get(c) for c in base]
        line += [
            fmt_value((r.get("params") or {}).get(k), None) if k in (r.get("params") or {}) else ""
            for k in param_keys
        ]
        line += [(r.get("metrics") or {}).get(k, "") for k in metric_keys]
        line += [(r.get("tags") or {}).get(k, "") for k in tag_keys]
        writer.writerow(["" if v is None else v for v in line])
    return buf.getvalue().rstrip("\n")


@click.command("log")
@click.option(
    "-n", "--max-count", type=click.IntRange(min=0), default=None, help="Show at most N runs."
)
@click.option(
    "-e", "--experiment", multiple=True, help="Only runs of this experiment (repeatable)."
)
@click.option(
    "-f",
    "--filter",
    "filter_",
    metavar="EXPR",
    help='Filter expression, e.g. "params.lr > 0.01 and metrics.acc >= 0.9".',
)
@click.option(
    "-o",
    "--order-by",
    multiple=True,
    metavar="FIELD [ASC|DESC]",
    help='Sort by a field, e.g. "metrics.acc DESC" (repeatable). Default: newest first.',
)
@click.option("--oneline", is_flag=True, help="One short line per run.")
@format_option("log", "table", "json", "csv", default="log")
@repo_option
def log_command(
    max_count: int | None,
    experiment: tuple[str, ...],
    filter_: str | None,
    order_by: tuple[str, ...],
    oneline: bool,
    fmt: str,
    repo_path: str,
) -> None:
    """List runs, newest first.

    \b
    Examples:
      gitxp log -n 10
      gitxp log --oneline -e iris
      gitxp log --filter "params.C >= 1 and attributes.status = 'FINISHED'" --format table
      gitxp log --order-by "metrics.acc DESC" -n 3 --format json

    --format json prints a JSON array; each object has the stable keys id,
    name, experiment, status, start_time, end_time (ms since the epoch, UTC),
    duration (s), code_commit, dirty, user, host, commit, params, metrics
    (last values) and tags. The log, oneline and table forms cut values
    longer than 200 characters (saying how long they are); json and csv
    print them whole, as does `gitxp show RUN --full`.
    """
    with open_repo(repo_path) as repo:
        rows = repo.rows(
            filter=filter_,
            experiment=list(experiment) or None,
            order_by=list(order_by) or None,
            limit=max_count or None,  # -n 0 lists nothing, but says so as before
        )
        repo._index.warn_broken()
        remote = None if rows else _pull_source(repo.git)
    if max_count is not None:
        rows = rows[:max_count]
    color = sys.stdout.isatty()
    if fmt == "json":
        click.echo(dump_json([json_row(r) for r in rows]))
    elif fmt == "csv":
        click.echo(_csv(rows))
    elif fmt == "table":
        if rows:
            click.echo(_table(rows))
    elif oneline:
        for r in rows:
            click.echo(_oneline(r, color))
    elif rows:
        click.echo("\n\n".join(_log_entry(r, color) for r in rows))
    # on stderr, so a script reading stdout still gets nothing
    if not rows and fmt in ("log", "table"):
        if filter_ or experiment:
            hint = "no runs match"
        elif remote:  # a fresh clone: git clone does not fetch runs
            import shlex

            pull = "gitxp pull" if remote == "origin" else f"gitxp pull {shlex.quote(remote)}"
            hint = (
                f"no runs here yet: `{pull}` fetches the runs pushed to {remote}; "
                "record one with `gitxp run -- python train.py`"
            )
        else:
            hint = (
                "no runs yet: record one with `gitxp run -- python train.py` or "
                "`with gitxp.start_run(): ...`; or fetch someone's with `gitxp pull URL`"
            )
        click.echo(hint, err=True)


def _pull_source(git: Any) -> str | None:
    """The remote `gitxp pull` would fetch from (origin, else the only one), or None."""
    from ..git.remote_config import configured_remotes, default_remote_name

    names = configured_remotes(git)
    preferred = default_remote_name(git, "fetch")
    if preferred in names:
        return preferred
    return names[0] if len(names) == 1 else None
