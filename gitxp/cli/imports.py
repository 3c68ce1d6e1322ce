"""`gitxp import mlflow|tensorboard`: bring runs recorded by other tools into this repository."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..present.output import dump_json
from ._options import format_option, repo_option


@click.group("import")
def import_group() -> None:
    """Copy runs from MLflow or TensorBoard into this repository.

    Importing the same source again adds nothing: each imported run records
    where it came from, and runs already imported are skipped.

    \b
    Examples:
      gitxp import mlflow --tracking-uri ./mlruns
      gitxp import mlflow --tracking-uri sqlite:///mlflow.db --experiment iris
      gitxp import tensorboard runs/ --experiment resnet
    """


class _Progress:
    """A progress bar on stderr for imports of many runs (silent when not a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def __call__(self, done: int, total: int, label: str) -> None:
        if not self.enabled or total < 10:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="importing", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _report(result: Any, fmt: str, what: str) -> None:
    if fmt == "json":
        click.echo(dump_json(result.to_dict()))
        return
    for source, run_id in result.imported:
        click.echo(f"imported {source} -> {run_id}")
    click.echo(
        f"{len(result.imported)} {what} imported, {len(result.skipped)} already present (skipped)"
    )


@import_group.command("mlflow")
@click.option(
    "--tracking-uri",
    "-u",
    required=True,
    metavar="URI",
    help="An mlruns/ directory, or any URI MLflow's client opens (sqlite:///mlflow.db, http://...).",
)
@click.option(
    "--experiment",
    "-e",
    multiple=True,
    metavar="NAME",
    help="Only this MLflow experiment (name or id; repeatable).",
)
@click.option("--into", metavar="EXPERIMENT", help="Put every run in this gitxp experiment.")
@click.option(
    "--reader",
    type=click.Choice(["auto", "files", "client"]),
    default="auto",
    show_default=True,
    help="files: read mlruns/ directly; client: through MLflow's own client.",
)
@format_option("text", "json", default="text")
@repo_option
def mlflow_command(
    tracking_uri: str,
    experiment: tuple[str, ...],
    into: str | None,
    reader: str,
    fmt: str,
    repo_path: str,
) -> None:
    """Import runs from an MLflow tracking store.

    Names, params, tags, notes, statuses, start/end times, full metric
    histories (steps and timestamps) and artifacts are carried over; nested
    runs keep their parent. A plain mlruns/ directory needs no MLflow
    installed; other stores need `pip install 'gitxp[mlflow]'`.

    \b
    Examples:
      gitxp import mlflow --tracking-uri ./mlruns
      gitxp import mlflow -u sqlite:///mlflow.db -e iris -e mnist
      gitxp import mlflow -u http://127.0.0.1:5000 --into from-mlflow --format json
    """
    from ..integrations.mlflow_import import import_mlflow

    progress = _Progress(sys.stderr.isatty() and fmt != "json")
    try:
        result = import_mlflow(
            tracking_uri,
            list(experiment) or None,
            repo_path,
            into=into,
            reader=reader,
            progress=progress,
        )
    finally:
        progress.close()
    _report(result, fmt, "runs")


@import_group.command("tensorboard")
@click.argument("logdir", type=click.Path(file_okay=False))
@click.option(
    "--experiment",
    "-e",
    metavar="NAME",
    help="gitxp experiment for the runs (default: the log directory's name).",
)
@format_option("text", "json", default="text")
@repo_option
def tensorboard_command(logdir: str, experiment: str | None, fmt: str, repo_path: str) -> None:
    """Import TensorBoard event files: one run per directory holding them.

    Scalars keep their steps, wall times and exact values (both simple_value
    and tensor-encoded scalars), hparams become params and text summaries go
    to the notes. Images, audio, video, histograms, PR curves, meshes, graphs
    and embeddings are kept under each run's tensorboard/ artifact. Needs
    `pip install 'gitxp[tensorboard]'`.

    \b
    Examples:
      gitxp import tensorboard runs/
      gitxp import tensorboard lightning_logs/ --experiment resnet --format json
    """
    from ..integrations.tensorboard import import_tensorboard

    progress = _Progress(sys.stderr.isatty() and fmt != "json")
    try:
        result = import_tensorboard(logdir, repo_path, experiment=experiment, progress=progress)
    finally:
        progress.close()
    _report(result, fmt, "runs")
