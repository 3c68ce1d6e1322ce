"""`gitxp artifacts ls|get`: list and download the files kept with a run."""

from __future__ import annotations

import sys

import click

from .._text import count, size
from ..present.output import dump_json, render_table
from ._options import format_option, open_repo, repo_option


@click.group("artifacts")
def artifacts_group() -> None:
    """List and download the artifacts kept with runs.

    Log them in Python with `run.log_artifact("model.pkl")`. Files up to
    5 MiB (gitxp.artifactThreshold) live in the run's git tree; larger ones
    in the artifact store (.git/gitxp/artifacts, or gitxp.artifactStore).

    \b
    Examples:
      gitxp artifacts ls swift-otter-42
      gitxp artifacts get swift-otter-42 model.pkl --to ./restored
    """


@artifacts_group.command("ls")
@click.argument("run")
@click.argument("name", required=False)
@format_option("table", "json", default="table")
@repo_option
def ls_command(run: str, name: str | None, fmt: str, repo_path: str) -> None:
    """List the artifact files of RUN (or of its artifact NAME).

    \b
    Examples:
      gitxp artifacts ls swift-otter-42
      gitxp artifacts ls 01jdx3k9 outputs --format json
    """
    with open_repo(repo_path) as repo:
        files = repo.run(run).artifacts(name)
    if fmt == "json":
        click.echo(dump_json(files))
        return
    if not files:
        click.echo("no artifacts")
        return
    rows = [
        [
            f["path"],
            size(int(f["size"])),
            "git" if f.get("location") == "tree" else (f.get("store") or "local store"),
            str(f.get("sha256", ""))[:12],
        ]
        for f in files
    ]
    click.echo(render_table(["path", "size", "where", "sha256"], rows))


@artifacts_group.command("get")
@click.argument("run")
@click.argument("name", required=False)
@click.option(
    "--to",
    "to",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory to write into (created if needed).",
)
@format_option("text", "json", default="text")
@repo_option
def get_command(run: str, name: str | None, to: str, fmt: str, repo_path: str) -> None:
    """Download RUN's artifacts (or only NAME) into --to DIR, verifying each sha256.

    Large files come from the local artifact store, else from the shared
    store the run names. Paths are checked so nothing is written outside DIR.

    \b
    Examples:
      gitxp artifacts get swift-otter-42 --to out/
      gitxp artifacts get 01jdx3k9 model.pkl
    """
    from .._text import progress_to

    with open_repo(repo_path) as repo:
        record = repo.run(run)
        from ..store.artifacts import download

        progress = progress_to(sys.stderr) if sys.stderr.isatty() else None
        written = download(record._git, record.commit, record.id, name, to, progress)
    if fmt == "json":
        click.echo(dump_json({"run": record.id, "written": written}))
        return
    for path in written:
        click.echo(path)
    click.echo(f"{count(len(written), 'file')} written to {to}", err=True)
