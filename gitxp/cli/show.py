"""`gitxp show RUN`: everything about one run."""

from __future__ import annotations

import sys
from typing import Any

import click

from .._text import count, size
from ..present.output import (
    VALUE_LIMIT,
    dump_json,
    fmt_duration,
    fmt_status,
    fmt_time,
    fmt_value,
    render_table,
    shorten,
)
from ._options import format_option, open_repo, repo_option


def _section(title: str, color: bool) -> str:
    return click.style(title, bold=True) if color else title


def render(record: Any, color: bool, env_details: bool = False, full: bool = False) -> str:
    """The human form of `gitxp show`; long values are cut unless *full*."""
    data = record.to_dict()
    out = _head(record, data, color)
    if data.get("corrupt"):  # nothing else of it is read: say why, and what can be done
        out.append(f"Corrupt:    {data['corrupt']}")
        out.append(f"            inspect it with `git log -p {record.ref}`")
        return "\n".join(out)
    out += _details(record, data)
    for title, lines in _sections(record, data, None if full else VALUE_LIMIT, env_details):
        out += ["", _section(title, color), *lines]
    return "\n".join(out)


def _head(record: Any, data: dict[str, Any], color: bool) -> list[str]:
    """The lines every run has: id, name, experiment, status, times, user, code and ref."""
    end = data["end_time"]
    duration = (
        None if end is None or data["start_time"] is None else ((end - data["start_time"]) / 1000)
    )
    code = data["code_commit"] or "-"
    if data["dirty"]:
        code += " (snapshot of uncommitted changes)"
    return [
        (click.style(f"run {data['id']}", fg="yellow") if color else f"run {data['id']}"),
        f"Name:       {data['name']}",
        f"Experiment: {data['experiment']}",
        f"Status:     {fmt_status(data['status'], color)}  ({fmt_duration(duration)})",
        f"Started:    {fmt_time(data['start_time'])}",
        f"Ended:      {fmt_time(end)}",
        f"User:       {data['user']} on {data['host']}",
        f"Code:       {code}",
        f"Ref:        {record.ref} at {record.commit[:12]}",
    ]


def _details(record: Any, data: dict[str, Any]) -> list[str]:
    """The header lines a run has only sometimes: format, command, exit code, output, error."""
    out = []
    if data.get("format"):
        out.append(
            f"Format:     {data['format']} (newer than this gitxp: shown as far as it "
            "understands it, read-only; upgrade gitxp to change it)"
        )
    command = data.get("command") or {}
    if command.get("argv"):
        out.append(f"Command:    {' '.join(command['argv'])}  (in {command.get('cwd', '.')})")
    meta = record.meta
    if meta.get("exit_code") is not None:
        signal = f", signal {meta['signal']}" if meta.get("signal") else ""
        out.append(f"Exit code:  {meta['exit_code']}{signal}")
    stored = (meta.get("output") or {}).get("stored")
    if stored:
        out.append(f"Output:     {stored:,} bytes stored (--output prints them)")
    if data.get("error"):
        out.append(f"Error:      {data['error']}")
    return out


def _sections(
    record: Any, data: dict[str, Any], limit: int | None, env_details: bool
) -> list[tuple[str, list[str]]]:
    """(title, lines) of each section the run has, in the order `gitxp show` prints them."""
    out = []
    if data["params"]:
        width = max(len(k) for k in data["params"])
        params = [f"  {k.ljust(width)}  {fmt_value(v, limit)}" for k, v in data["params"].items()]
        out.append(("Params", params))
    summary = record.summary
    if summary:
        out.append(("Metrics", _metric_lines(summary)))
    if data["tags"]:
        out.append(("Tags", [f"  {k} = {shorten(str(v), limit)}" for k, v in data["tags"].items()]))
    if data["notes"]:
        out.append(("Notes", ["  " + line for line in data["notes"].splitlines()]))
    artifacts = _artifact_lines(record.artifacts())
    if artifacts:
        out.append(("Artifacts", artifacts))
    snap = data.get("snapshot") or {}
    if snap.get("changed_count") or snap.get("excluded_count"):
        out.append(("Snapshot", _snapshot_lines(snap)))
    env = record.env
    if env:
        out.append(("Environment", _env_lines(env, env_details)))
    return out


def _metric_lines(summary: dict[str, dict[str, Any]]) -> list[str]:
    """The metrics table: each metric's last value and step, min, max and number of points."""
    rows = [
        [
            k,
            fmt_value(s.get("last")),
            str(s.get("step")),
            fmt_value(s.get("min")),
            fmt_value(s.get("max")),
            str(s.get("count")),
        ]
        for k, s in summary.items()
    ]
    table = render_table(["key", "last", "step", "min", "max", "points"], rows)
    return ["  " + line for line in table.splitlines()]


def _snapshot_lines(snap: dict[str, Any]) -> list[str]:
    """What the snapshot of uncommitted changes holds, and what it left out."""
    out = []
    if snap.get("changed_count"):
        out.append(
            f"  {count(snap['changed_count'], 'file')} changed from HEAD: "
            + ", ".join(snap.get("changed", [])[:10])
            + (" ..." if snap["changed_count"] > 10 else "")
        )
    for item in snap.get("excluded", [])[:20]:
        out.append(f"  left out: {item['path']} ({item['reason']})")
    if snap.get("excluded_count", 0) > 20:
        out.append(f"  ... and {snap['excluded_count'] - 20} more left out")
    return out


def _env_lines(env: dict[str, Any], details: bool) -> list[str]:
    """Python, platform and GPUs; the packages and variables too with *details*."""
    py = env.get("python", {})
    plat = env.get("platform", {})
    out = [
        f"  Python {py.get('version')} ({py.get('executable')})",
        f"  {plat.get('platform')}, {env.get('cpu_count')} CPUs",
    ]
    for gpu in env.get("gpus") or []:
        out.append(f"  GPU {gpu.get('name')} (driver {gpu.get('driver')})")
    packages = env.get("packages") or {}
    if details:
        out += [f"  {name}=={version}" for name, version in packages.items()]
        out += [f"  ${k}={v}" for k, v in (env.get("variables") or {}).items()]
    else:
        out.append(f"  {len(packages)} packages installed (--env lists them)")
    return out


def _artifact_lines(files: list[dict[str, Any]]) -> list[str]:
    """One line per artifact: its name, how many files, their size, where large ones live."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for f in files:
        grouped.setdefault(f["name"], []).append(f)
    rows = []
    for name, members in grouped.items():
        single = len(members) == 1 and members[0]["path"] == name
        what = size(sum(int(f.get("size") or 0) for f in members))
        if not single:
            what = f"{count(len(members), 'file')}, {what}"
        stored = sum(1 for f in members if f.get("location") == "store")
        if stored:
            what += " (in the artifact store)" if single else f" ({stored:,} in the artifact store)"
        rows.append([name if single else name + "/", what])
    width = max((len(r[0]) for r in rows), default=0)
    return [f"  {n.ljust(width)}  {w}" for n, w in rows]


@click.command("show")
@click.argument("run")
@click.option(
    "--env",
    "env_details",
    is_flag=True,
    help="List installed packages and recorded environment variables.",
)
@click.option(
    "--output",
    "output",
    is_flag=True,
    help="Print the captured output of a `gitxp run` command instead.",
)
@click.option(
    "--full",
    is_flag=True,
    help=f"Print long param and tag values whole (cut at {VALUE_LIMIT} characters otherwise).",
)
@format_option("text", "json", default="text")
@repo_option
def show_command(
    run: str, env_details: bool, output: bool, full: bool, fmt: str, repo_path: str
) -> None:
    """Show one run: params, metric summary, tags, notes, artifacts, code and environment.

    RUN is a full run id, a unique id prefix (4+ characters) or a run name.

    \b
    Examples:
      gitxp show 01jdx3k9
      gitxp show swift-otter-42 --env
      gitxp show swift-otter-42 --full      # long param values whole
      gitxp show swift-otter-42 --output | tail
      gitxp show swift-otter-42 --format json | jq .params
    """
    with open_repo(repo_path) as repo:
        record = repo.run(run)
        if output:
            click.echo(record.output, nl=False)
            return
        if fmt == "json":
            data = record.to_dict()
            data["env"] = record.env
            data["history"] = record.history()
            data["artifacts"] = [] if record.corrupt else record.artifacts()
            click.echo(dump_json(data))
        else:
            click.echo(render(record, sys.stdout.isatty(), env_details, full))
