"""`gitxp push`, `gitxp pull`, `gitxp fetch` and `gitxp remote setup`: runs over git remotes."""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click

from .._text import count
from ..present.output import dump_json, render_table
from ._options import format_option, open_repo, repo_option


def _progress(quiet: bool) -> Any:
    from .._text import progress_to

    if quiet or not sys.stderr.isatty():
        return None
    return progress_to(sys.stderr)


def _names(repo: Any, results: list[Any]) -> dict[str, str]:
    """Run names for the results worth showing (read from the commits, not a full listing)."""
    from ..store.record import read_row

    names = {}
    for result in results:
        sha = result.new or result.old
        if sha is None:
            continue
        try:
            names[result.run_id] = str(read_row(repo.git, sha).get("name") or "")
        except Exception:  # a run we could not read still gets its line
            names[result.run_id] = ""
    return names


def report(
    repo: Any,
    results: list[Any],
    remote: str,
    fmt: str,
    verbose: bool,
    action: str,
    dry_run: bool = False,
) -> None:
    """Print the per-run summary (table or JSON) and exit 1 when a run was not moved or a
    registry tag conflicts."""
    from ..ops.sharing import summarize

    counts = summarize(results)
    tags = list(getattr(results, "tags", []))
    if fmt == "json":
        click.echo(
            dump_json(
                {
                    "remote": remote,
                    "action": action,
                    "dry_run": dry_run,
                    "results": [r.to_dict() for r in results],
                    "summary": counts,
                    "tags": [t.to_dict() for t in tags],
                }
            )
        )
    else:
        shown = [r for r in results if verbose or r.status != "up-to-date"]
        if shown:
            names = _names(repo, shown)
            rows = [[r.run_id, names.get(r.run_id, ""), r.status, r.message] for r in shown]
            table = render_table(["run", "name", "status", "detail"], rows)
            click.echo(table)
        parts = [f"{n} {status}" for status, n in counts.items() if n]
        direction = "to" if action == "push" else "from"
        total = len(results)
        click.echo(
            f"{action} {direction} {remote}: {count(total, 'run')}"
            + (": " + ", ".join(parts) if parts else "")
            + (" (dry run: nothing was sent)" if dry_run else "")
        )
        _report_tags(tags, verbose)
    bad = counts["rejected"] + counts["error"]
    if not bad and any(t.status in ("conflict", "error") for t in tags):
        sys.exit(1)
    if bad:
        if fmt != "json":
            # the table may cut the detail column: the advice is repeated whole
            for r in results:
                if r.status in ("rejected", "error"):
                    click.echo(f"{r.run_id[:12]}: {r.message}", err=True)
            click.echo(
                f"error: {count(bad, 'run')} not {'pushed' if action == 'push' else 'fetched'} "
                "(nothing was overwritten)",
                err=True,
            )
        sys.exit(1)


def _report_tags(tags: list[Any], verbose: bool) -> None:
    """One line per registry tag that moved (all with *verbose*), the conflicts on stderr."""
    from ..ops.tag_sharing import summarize_tags

    if not tags:
        return
    for t in tags:
        if t.status in ("conflict", "error"):
            click.echo(f"tag {t.tag}: {t.status}: {t.message}", err=True)
        elif verbose or t.status != "up-to-date":
            detail = f" ({t.message})" if t.message else ""
            click.echo(f"tag {t.tag} (run {t.run_id[:12]}): {t.status}{detail}")
    parts = [f"{n} {status}" for status, n in summarize_tags(tags).items() if n]
    click.echo(f"{count(len(tags), 'model registry tag')}: {', '.join(parts)}")


def _common(func: Any) -> Any:
    func = repo_option(func)
    func = format_option("table", "json", default="table")(func)
    func = click.option(
        "-v", "--verbose", is_flag=True, help="List up-to-date runs in the summary too."
    )(func)
    func = click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")(func)
    return func


@click.command("push")
@click.argument("remote", required=False)
@click.argument("runs", nargs=-1, metavar="[RUN]...")
@click.option("-e", "--experiment", multiple=True, help="Push the runs of this experiment.")
@click.option("--all", "all_runs", is_flag=True, help="Push every run (the default).")
@click.option("-f", "--force", is_flag=True, help="Replace the remote's diverged runs.")
@click.option(
    "--artifacts", is_flag=True, help="Upload large artifacts to the artifact store first."
)
@click.option("-n", "--dry-run", is_flag=True, help="Compare with the remote, change nothing.")
@click.option(
    "--reindex",
    is_flag=True,
    help="Ship the listing rows of every run pushed, up-to-date ones too (see docs/sharing.md).",
)
@_common
def push_command(
    remote: str | None,
    runs: tuple[str, ...],
    experiment: tuple[str, ...],
    all_runs: bool,
    force: bool,
    artifacts: bool,
    dry_run: bool,
    reindex: bool,
    fmt: str,
    verbose: bool,
    quiet: bool,
    repo_path: str,
) -> None:
    """Push runs to a git remote: one connection, one pack, only missing objects.

    REMOTE is a remote name, URL or path (default: the branch's push remote,
    then origin). RUN is a run id, unique id prefix or name; with no RUN and
    no -e every run is pushed, and runs the remote already has cost nothing.
    A run whose history diverged on the remote is rejected and left alone
    unless --force. The model registry tags of those runs (`gitxp model`)
    go too; a tag the remote holds with other contents is a conflict and
    is never replaced. The listing rows of the runs sent go into the
    remote's listing index, so a clone lists them without reading them;
    --reindex ships the rows of every run pushed. Exits 1 when a run was rejected or refused, or a
    tag conflicts.

    \b
    Examples:
      gitxp push                          # every run to origin
      gitxp push origin swift-otter-42    # one run
      gitxp push backup -e iris --artifacts
      gitxp push -n                       # what would be pushed
      gitxp push git@github.com:me/proj.git --format json
    """
    from ..ops.sharing import push

    with open_repo(repo_path) as repo:
        from ..git.remote_config import resolve_remote

        target = resolve_remote(repo.git, remote, "push").display
        results = push(
            repo,
            remote,
            runs=list(runs) or None,
            experiment=list(experiment) or None,
            all=all_runs,
            force=force,
            artifacts=artifacts,
            progress=_progress(quiet),
            dry_run=dry_run,
            reindex=reindex,
        )
        if not results and fmt != "json":
            click.echo("no runs to push")
            return
        if not dry_run:
            _warn_unpushed_lfs(repo, results, remote)
        report(repo, results, target, fmt, verbose, "push", dry_run)


def _warn_unpushed_lfs(repo: Any, results: list[Any], remote: str | None) -> None:
    """Say on stderr when Git LFS content of the pushed snapshots is not on the remote."""
    from ..ops.lfs import lfs_push_advice, unpushed_lfs_objects

    check = unpushed_lfs_objects(repo.git, results, remote)
    advice = lfs_push_advice(check) if check is not None else None
    if advice:
        click.echo(f"warning: {advice}", err=True)


def _fetch_options(func: Any) -> Any:
    func = _common(func)
    func = click.option("--artifacts", is_flag=True, help="Also download their large artifacts.")(
        func
    )
    func = click.option("-f", "--force", is_flag=True, help="Take the remote's diverged runs.")(
        func
    )
    func = click.option(
        "--rebase-edits",
        is_flag=True,
        help="For a run edited on both sides: replay your tag/name/note edits on the "
        "remote's history (then `gitxp push`).",
    )(func)
    func = click.argument("runs", nargs=-1, metavar="[RUN]...")(func)
    return click.argument("remote", required=False)(func)


def _fetch(action: str, remote: str | None, runs: tuple[str, ...], **options: Any) -> None:
    from ..git.remote_config import resolve_remote
    from ..ops.sharing import fetch

    if options["force"] and options["rebase_edits"]:
        raise click.UsageError("--force takes the remote's runs, --rebase-edits keeps your edits")
    with open_repo(options["repo_path"]) as repo:
        target = resolve_remote(repo.git, remote, "fetch").display
        results = fetch(
            repo,
            remote,
            runs=list(runs) or None,
            force=options["force"],
            artifacts=options["artifacts"],
            progress=_progress(options["quiet"]),
            rebase_edits=options["rebase_edits"],
        )
        if not results and options["fmt"] != "json":
            click.echo(f"no runs on {target}")
            return
        report(repo, results, target, options["fmt"], options["verbose"], action)


@click.command("fetch")
@_fetch_options
def fetch_command(remote: str | None, runs: tuple[str, ...], **options: Any) -> None:
    """Fetch runs from a git remote: one negotiation, one pack.

    REMOTE is a remote name, URL or path (default: the branch's remote, then
    origin). RUN is a run id or id prefix on the remote (or a local name);
    with no RUN every run is fetched. A local run whose history diverged from
    the remote's is kept and reported unless --force. The remote's model
    registry tags of those runs come too; a local tag is never replaced.
    Runs never merge, so `gitxp pull` does the same. Exits 1 when a run was
    rejected or a tag conflicts.

    \b
    Examples:
      gitxp fetch
      gitxp fetch origin 01jdx3k9
      gitxp fetch https://git.example.com/team/proj.git --format json
    """
    _fetch("fetch", remote, runs, **options)


@click.command("pull")
@_fetch_options
def pull_command(remote: str | None, runs: tuple[str, ...], **options: Any) -> None:
    """Pull runs from a git remote (runs never merge: the same as `gitxp fetch`).

    New runs are created and runs with newer commits on the remote are
    fast-forwarded, and their model registry tags (stage assignments) come
    along. A diverged run is kept and reported unless --force. With
    --artifacts the large artifacts of the pulled runs are downloaded from
    their artifact store too.

    \b
    Examples:
      gitxp pull
      gitxp pull origin --artifacts
      gitxp pull --force origin swift-otter-42
      gitxp pull --rebase-edits && gitxp push   # edited on two clones: keep both

    A run edited on two clones (tags, name, notes) has diverged; --rebase-edits
    replays your edits on top of the remote's history, so `gitxp push` can
    then fast-forward it. Runs whose local commits are more than edits
    (checkpoints) stay rejected.
    """
    _fetch("pull", remote, runs, **options)


@click.group("remote")
def remote_group() -> None:
    """Configure git remotes for runs.

    \b
    Examples:
      gitxp remote setup              # origin
      gitxp remote setup backup --no-push
    """


@remote_group.command("setup")
@click.argument("remote", required=False)
@click.option(
    "--push/--no-push",
    "with_push",
    default=True,
    show_default=True,
    help="Also make a plain `git push` push runs.",
)
@click.option(
    "--tags/--no-tags",
    "with_tags",
    default=True,
    show_default=True,
    help="Also carry tags (refs/tags/*), where the model registry lives.",
)
@format_option("text", "json", default="text")
@repo_option
def setup_command(
    remote: str | None, with_push: bool, with_tags: bool, fmt: str, repo_path: str
) -> None:
    """Make plain `git fetch` and `git push` of REMOTE carry runs and tags too.

    Adds `refs/gitxp/runs/*:refs/gitxp/runs/*` to remote.<name>.fetch (no
    `+`: git, like gitxp, then refuses to overwrite a diverged local run)
    and, unless --no-push, to remote.<name>.push, together with `HEAD` when
    the remote had no push refspec so `git push` still pushes your branch.
    Unless --no-tags, `refs/tags/*:refs/tags/*` is added the same way, so
    model registry tags travel (git never replaces an existing tag).
    Running it again changes nothing.

    \b
    Examples:
      gitxp remote setup
      gitxp remote setup upstream --no-push
      gitxp remote setup --no-tags                   # runs only
      git fetch origin 'refs/gitxp/*:refs/gitxp/*'   # the one-off equivalent
    """
    from ..ops.sharing import setup_remote

    with open_repo(repo_path) as repo:
        result = setup_remote(repo, remote, push=with_push, tags=with_tags)
    if fmt == "json":
        click.echo(dump_json(result.to_dict()))
        return
    if not result.fetch and not result.push:
        click.echo(f"remote {result.remote} already carries runs; nothing changed")
        return
    for spec in result.fetch:
        click.echo(f"added remote.{result.remote}.fetch = {spec}")
    for spec in result.push:
        click.echo(f"added remote.{result.remote}.push = {spec}")
    click.echo(
        f"`git fetch {shlex.quote(result.remote)}` now fetches runs"
        + (f" and `git push {shlex.quote(result.remote)}` pushes them" if result.push else "")
    )
