"""`gitxp diff RUN_A RUN_B` and `gitxp compare RUN...`: what differs between runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from .._text import count
from ..present.output import dump_json, fmt_value, render_table
from ._options import format_option, repo_option


def _pct(rel: float | None) -> str:
    return "" if rel is None else f"{rel * 100:+.1f}%"


def _delta(d: dict[str, Any]) -> str:
    if d.get("abs") is None:
        return ""
    return f"{d['abs']:+.4g} ({_pct(d['rel'])})" if d.get("rel") is not None else f"{d['abs']:+.4g}"


def _change_rows(
    changes: dict[str, Any], show: Callable[[Any], str], prefix: str = ""
) -> list[list[str]]:
    """[key, a, b] rows of one part of a diff: the changed, then the added, then the removed."""
    rows = [[prefix + k, show(v[0]), show(v[1])] for k, v in changes.get("changed", {}).items()]
    rows += [[prefix + k, "-", show(v)] for k, v in changes.get("added", {}).items()]
    rows += [[prefix + k, show(v), "-"] for k, v in changes.get("removed", {}).items()]
    return rows


def _sections(result: Any) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) for each part of a diff, shared by the text and Markdown forms."""
    out: list[tuple[str, list[str], list[list[str]]]] = []
    rows = _change_rows(result.params, fmt_value)
    if rows:
        out.append(("Params", ["param", "a", "b"], rows))
    rows = []
    for m in result.metrics:
        last = m["last"]
        rows.append(
            [
                m["key"],
                fmt_value(last["a"]),
                fmt_value(last["b"]),
                _delta(last),
                f"{fmt_value(m['min']['a'])} / {fmt_value(m['min']['b'])}",
                f"{fmt_value(m['max']['a'])} / {fmt_value(m['max']['b'])}",
            ]
        )
    if rows:
        out.append(
            ("Metrics", ["metric", "last a", "last b", "change", "min a / b", "max a / b"], rows)
        )
    rows = _change_rows(result.tags, fmt_value)
    if rows:
        out.append(("Tags", ["tag", "a", "b"], rows))
    env = result.env
    rows = []
    for key in ("python", "platform", "gpus"):
        if key in env:
            rows.append([key, str(env[key][0]), str(env[key][1])])
    for key in ("packages", "variables"):
        rows += _change_rows(env.get(key) or {}, str, f"{key}: ")
    if rows:
        out.append(("Environment", ["what", "a", "b"], rows))
    files = result.code.get("files") or []
    if files:
        out.append(("Code", ["file", "change"], [[f["path"], f["change"]] for f in files]))
    return out


def _header(result: Any) -> list[str]:
    a, b = result.a, result.b
    code = result.code
    lines = [
        f"a: {a['name']} ({a['id'][:12]}, {a['status']}, code {(a['code_commit'] or '-')[:12]})",
        f"b: {b['name']} ({b['id'][:12]}, {b['status']}, code {(b['code_commit'] or '-')[:12]})",
    ]
    if code.get("missing"):
        lines.append("code: a code commit is missing here (fetch the runs with `gitxp pull`)")
    elif code["same"]:
        lines.append("code: identical")
    else:
        shown = "the diff is below" if code.get("patch") else "--code shows the diff"
        lines.append(f"code: {count(len(code['files']), 'file')} changed ({shown})")
    return lines


def render_text(result: Any) -> str:
    lines = _header(result)
    for title, headers, rows in _sections(result):
        lines += ["", title]
        lines += ["  " + line for line in render_table(headers, rows).splitlines()]
    if result.notes:
        lines += [
            "",
            "Notes",
            "  a: " + (result.notes["a"] or "-"),
            "  b: " + (result.notes["b"] or "-"),
        ]
    if result.code.get("patch"):
        lines += ["", result.code["patch"].rstrip("\n")]
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: Any) -> str:
    a, b = result.a, result.b
    lines = [f"## {a['name']} vs {b['name']}", ""]
    lines += [f"- {line}" for line in _header(result)]
    for title, headers, rows in _sections(result):
        lines += ["", f"### {title}", "", "| " + " | ".join(headers) + " |"]
        lines.append("|" + "---|" * len(headers))
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    if result.notes:
        lines += [
            "",
            "### Notes",
            "",
            f"**a:** {result.notes['a'] or '-'}",
            "",
            f"**b:** {result.notes['b'] or '-'}",
        ]
    if result.code.get("patch"):
        lines += ["", "### Code diff", "", "```diff", result.code["patch"].rstrip("\n"), "```"]
    return "\n".join(lines)


@click.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--code", is_flag=True, help="Also print the unified diff of the two code commits.")
@format_option("table", "json", "md", default="table")
@repo_option
def diff_command(run_a: str, run_b: str, code: bool, fmt: str, repo_path: str) -> None:
    """Show what differs between two runs: params, metrics, environment, code, tags, notes.

    Metrics show the last value of each run with the absolute and relative
    change from RUN_A to RUN_B, and their min and max. Environment lists
    the Python version, platform and packages that changed. Code lists the
    files changed between the two code commits; --code prints the diff.

    \b
    Examples:
      gitxp diff calm-heron-7 swift-otter-42
      gitxp diff calm-heron-7 swift-otter-42 --code
      gitxp diff 01jdx3 01jdx4 --format md > comparison.md
      gitxp diff calm-heron-7 swift-otter-42 --format json | jq .metrics
    """
    from ..ops.compare import diff

    result = diff(run_a, run_b, code=code, repo=repo_path)
    if fmt == "json":
        click.echo(dump_json(result.to_dict()))
    elif fmt == "md":
        click.echo(render_markdown(result))
    else:
        click.echo(render_text(result))


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, metavar="RUN...")
@click.option(
    "--only-changed/--all",
    "only_changed",
    default=True,
    show_default=True,
    help="Show only the fields whose values differ (default), or every field.",
)
@click.option(
    "-s",
    "--sort",
    "sort_by",
    default=None,
    metavar="FIELD [ASC|DESC]",
    help="Order the runs, e.g. 'metrics.acc DESC'.",
)
@format_option("table", "json", default="table")
@repo_option
def compare_command(
    runs: tuple[str, ...], only_changed: bool, sort_by: str | None, fmt: str, repo_path: str
) -> None:
    """Put runs side by side, one column per run; by default only fields that differ.

    \b
    Examples:
      gitxp compare calm-heron-7 swift-otter-42 bold-crane-3
      gitxp compare $(gitxp log -e iris --format json | jq -r '.[].id') -s "metrics.acc DESC"
      gitxp compare calm-heron-7 swift-otter-42 --all --format json
    """
    from ..ops.compare import compare

    result = compare(list(runs), only_changed=only_changed, sort_by=sort_by, repo=repo_path)
    if fmt == "json":
        click.echo(dump_json(result.to_dict()))
        return
    headers = ["field"] + [r["name"] or r["id"][:12] for r in result.runs]
    rows = [[name] + [fmt_value(v) for v in values] for name, values in result.rows]
    if not rows:
        click.echo("the runs do not differ in status, params, metrics, tags or code")
        return
    click.echo(render_table(headers, rows))
