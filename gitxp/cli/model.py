"""`gitxp model ...`: the model registry (GTO's git tags): register runs, assign stages, list."""

from __future__ import annotations

from typing import Any

import click

from ..errors import UsageError
from ..format.registry import parse_reference
from ..present.output import dump_json, fmt_time, fmt_value, render_table
from ._options import format_option, open_repo, repo_option

_MESSAGE = click.option("-m", "--message", default=None, help="The tag's message (first line).")


@click.group("model")
def model_group() -> None:
    """The model registry: versions and stages of models, kept as git tags.

    A version names a run: `register` tags the run's commit `NAME@vX.Y.Z`,
    `assign` tags it `NAME#STAGE#N`, as GTO does, so `gto show` reads the
    registry and gitxp reads what `gto` wrote. Anywhere a RUN is accepted,
    NAME@vX.Y.Z, NAME@latest and NAME#STAGE name the registered run.
    Share the tags with `git push --tags`.

    \b
    Examples:
      gitxp model register swift-otter-42 churn --path model/
      gitxp model assign churn@v0.0.1 --stage prod
      gitxp show churn#prod
      gitxp model list
    """


@model_group.command("register")
@click.argument("run")
@click.argument("name")
@click.option("--version", "version", default=None, metavar="vX.Y.Z", help="The version to give.")
@click.option(
    "--bump",
    type=click.Choice(["major", "minor", "patch"]),
    default=None,
    help="Raise this part of the greatest version so far (default: patch).",
)
@click.option("--path", default=None, metavar="ARTIFACT", help="Which artifact is the model.")
@_MESSAGE
@format_option("text", "json", default="text")
@repo_option
def register_command(
    run: str,
    name: str,
    version: str | None,
    bump: str | None,
    path: str | None,
    message: str | None,
    fmt: str,
    repo_path: str,
) -> None:
    """Register RUN as a new version of model NAME (the git tag NAME@vX.Y.Z).

    The first version is v0.0.1; each next one raises the patch of the
    greatest version so far, or the part --bump names. The tag points at
    the run's commit, so the run stays reachable even if it is removed.

    \b
    Examples:
      gitxp model register swift-otter-42 churn
      gitxp model register calm-heron-7 churn --bump minor --path model/
      gitxp model register 01jdx3k9 churn --version v1.0.0 -m "first release"
    """
    if version is not None and bump is not None:
        raise UsageError("model register: give --version or --bump, not both")
    with open_repo(repo_path) as repo:
        v = repo.register_model(run, name, version, bump, path, message)
    _done(fmt, v.to_dict(), f"registered {v.reference} (run {v.run_id}, tag {v.tag})")


def _target(name: str, version: str | None, what: str) -> tuple[str, str]:
    """(model, version) from NAME plus --version, or from NAME@VERSION; both are required."""
    ref = parse_reference(name)
    if ref is not None and ref.stage is None:
        if version is not None and version != ref.version:
            raise UsageError(f"model {what}: {name} and --version {version} disagree; give one")
        return ref.model, str(ref.version)
    if version is None:
        raise UsageError(
            f"model {what}: say which version, e.g. {name}@v0.0.1 or --version v0.0.1 "
            f"({name}@latest for the greatest)"
        )
    return name, version


@model_group.command("assign")
@click.argument("name")
@click.option("--version", default=None, metavar="vX.Y.Z", help="The version (or NAME@vX.Y.Z).")
@click.option("--stage", required=True, help="The stage to assign (prod, staging, ...).")
@_MESSAGE
@format_option("text", "json", default="text")
@repo_option
def assign_command(
    name: str, version: str | None, stage: str, message: str | None, fmt: str, repo_path: str
) -> None:
    """Assign a stage to a version of model NAME (the git tag NAME#STAGE#N).

    A stage belongs to the version it was assigned to most recently, so
    assigning prod to v0.0.2 moves it off v0.0.1.

    \b
    Examples:
      gitxp model assign churn --version v0.0.2 --stage prod
      gitxp model assign churn@latest --stage staging
    """
    model, ver = _target(name, version, "assign")
    with open_repo(repo_path) as repo:
        v = repo.assign_stage(model, stage, ver, message)
    _done(fmt, v.to_dict(), f"assigned {stage} to {v.reference}")


@model_group.command("unassign")
@click.argument("name")
@click.option("--stage", required=True, help="The stage to take away.")
@click.option("--version", default=None, metavar="vX.Y.Z", help="Default: the version holding it.")
@_MESSAGE
@format_option("text", "json", default="text")
@repo_option
def unassign_command(
    name: str, stage: str, version: str | None, message: str | None, fmt: str, repo_path: str
) -> None:
    """Take a stage away from the version of model NAME holding it (NAME#STAGE!#N).

    The stage then goes back to the version that held it before, if any, as in GTO.

    \b
    Examples:
      gitxp model unassign churn --stage prod
      gitxp model unassign churn@v0.0.1 --stage staging
    """
    ref = parse_reference(name)
    if ref is not None and ref.stage is None:
        name, version = _target(name, version, "unassign")
    with open_repo(repo_path) as repo:
        v = repo.unassign_stage(name, stage, version, message)
    _done(fmt, v.to_dict(), f"unassigned {stage} from {v.reference}")


@model_group.command("deregister")
@click.argument("name")
@click.option("--version", default=None, metavar="vX.Y.Z", help="The version (or NAME@vX.Y.Z).")
@_MESSAGE
@format_option("text", "json", default="text")
@repo_option
def deregister_command(
    name: str, version: str | None, message: str | None, fmt: str, repo_path: str
) -> None:
    """Deregister a version of model NAME (NAME@vX.Y.Z!#N); it loses its stages.

    Its tags stay, so the run it names stays reachable and the history complete.

    \b
    Examples:
      gitxp model deregister churn@v0.0.1
      gitxp model deregister churn --version v0.0.1 -m "leaks the label"
    """
    model, ver = _target(name, version, "deregister")
    with open_repo(repo_path) as repo:
        v = repo.deregister_version(model, ver, message)
    _done(fmt, v.to_dict(), f"deregistered {v.reference}")


@model_group.command("deprecate")
@click.argument("name")
@_MESSAGE
@format_option("text", "json", default="text")
@repo_option
def deprecate_command(name: str, message: str | None, fmt: str, repo_path: str) -> None:
    """Deprecate model NAME (NAME@deprecated#N); registering a new version revives it.

    \b
    Examples:
      gitxp model deprecate churn
      gitxp model deprecate churn -m "replaced by churn-v2"
    """
    with open_repo(repo_path) as repo:
        m = repo.deprecate_model(name, message)
    _done(fmt, m.to_dict(), f"deprecated model {m.name}")


@model_group.command("list")
@format_option("table", "json", default="table")
@repo_option
def list_command(fmt: str, repo_path: str) -> None:
    """List the registered models: latest version, stages, run of the latest.

    \b
    Examples:
      gitxp model list
      gitxp model list --format json
    """
    with open_repo(repo_path) as repo:
        rows = repo.model_rows()
    if fmt == "json":
        click.echo(dump_json(rows))
        return
    if not rows:
        click.echo("no models yet; register a run with `gitxp model register RUN NAME`")
        return
    table = [
        [
            r["name"] + (" (deprecated)" if r["deprecated"] else ""),
            r["latest"] or "-",
            ", ".join(f"{k[7:]}={v}" for k, v in r.items() if k.startswith("stages.")) or "-",
            str(r["versions"]),
            (r["latest_run"] or "-")[:10],
            fmt_time(r["updated_at"] * 1000 if r["updated_at"] else None),
        ]
        for r in rows
    ]
    click.echo(render_table(["model", "latest", "stages", "versions", "run", "updated"], table))


@model_group.command("show")
@click.argument("name")
@click.option("--all", "show_all", is_flag=True, help="Also list deregistered versions.")
@format_option("table", "json", default="table")
@repo_option
def show_command(name: str, show_all: bool, fmt: str, repo_path: str) -> None:
    """Show the versions of model NAME: stages, run, status and the run's metrics.

    \b
    Examples:
      gitxp model show churn
      gitxp model show churn --all --format json
    """
    with open_repo(repo_path) as repo:
        model = repo.model(name)
        rows = repo.version_rows(model.name)
    if not show_all:
        rows = [r for r in rows if r["active"]]
    if fmt == "json":
        data = model.to_dict()
        data["versions"] = rows
        click.echo(dump_json(data))
        return
    state = "deprecated" if model.deprecated else "active"
    latest = model.latest.version if model.latest else "-"
    click.echo(f"model {model.name} ({state}), latest {latest}")
    click.echo(render_table(*_version_table(rows)) if rows else "no versions")


def _version_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    keys: dict[str, None] = {}
    for r in rows:
        keys.update(dict.fromkeys(sorted(r["metrics"])))
    shown = list(keys)[:6]
    headers = ["version", "stages", "run", "status", "registered", *shown]
    table = []
    for r in rows:
        run = r["run_name"] or (r["run_id"] or "(not a run)")[:10]
        status = (r["status"] or "-") + (", removed" if r["removed"] else "")
        version = r["version"] if r["registered"] else r["version"][:12]
        if not r["active"]:
            version += " (deregistered)"
        table.append(
            [version, ", ".join(r["stages"]) or "-", run, status, fmt_time(r["created_at"] * 1000)]
            + [fmt_value(r["metrics"].get(k)) if k in r["metrics"] else "-" for k in shown]
        )
    return headers, table


@model_group.command("history")
@click.argument("name")
@format_option("table", "json", default="table")
@repo_option
def history_command(name: str, fmt: str, repo_path: str) -> None:
    """Show every registry event of model NAME, oldest first (as `gto history`).

    \b
    Examples:
      gitxp model history churn
      gitxp model history churn --format json
    """
    with open_repo(repo_path) as repo:
        events = repo.model(name).events
    if fmt == "json":
        click.echo(dump_json([e.to_dict() for e in events]))
        return
    table = [
        [
            fmt_time(e.time * 1000),
            e.action,
            (e.version or "-") if len(e.version or "") < 40 else str(e.version)[:12],
            e.stage or "-",
            e.tag,
            e.author,
        ]
        for e in events
    ]
    click.echo(render_table(["time", "event", "version", "stage", "tag", "by"], table))


def _done(fmt: str, data: dict[str, Any], line: str) -> None:
    click.echo(dump_json(data) if fmt == "json" else line)
