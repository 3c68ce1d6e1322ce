"""`gitxp report`: a self-contained HTML report, or a Markdown pull-request report."""

from __future__ import annotations

import click

from ._options import repo_option


@click.command("report")
@click.argument("experiment", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "markdown"]),
    default=None,
    help="html (default), or markdown: the branch's runs against --base. [default: markdown "
    "with --base, else html]",
)
@click.option(
    "--base",
    metavar="REF",
    help="markdown: compare with the best runs reachable from REF (a branch, tag, origin/main "
    "or commit id).",
)
@click.option(
    "--head",
    metavar="REF",
    default="HEAD",
    show_default=True,
    help="markdown: the branch's tip; its runs are those of the commits in BASE..HEAD.",
)
@click.option(
    "-m",
    "--metric",
    "metrics",
    multiple=True,
    metavar="KEY[:max|:min]",
    help="markdown: a metric to compare, best when highest (max) or lowest (min); repeatable. "
    "Default: up to 6 metrics of the branch's runs, min for loss/error-like names.",
)
@click.option(
    "-e",
    "--experiment",
    "experiments",
    multiple=True,
    metavar="NAME",
    help="Only runs of this experiment (repeatable; the same as EXPERIMENT).",
)
@click.option(
    "-o",
    "--out",
    default=None,
    type=click.Path(dir_okay=False, writable=True),
    help="File to write.  [default: report.html; markdown: standard output]",
)
@click.option("-f", "--filter", "filter_", metavar="EXPR", help="Only runs matching EXPR.")
@click.option(
    "-n",
    "--max-runs",
    type=click.IntRange(1, 5000),
    default=None,
    help="At most N runs (newest first).  [default: 200; markdown: 50 per experiment]",
)
@click.option("--no-sparklines", is_flag=True, help="markdown: no sparkline after each value.")
@repo_option
def report_command(
    experiment: str | None,
    fmt: str | None,
    base: str | None,
    head: str,
    metrics: tuple[str, ...],
    experiments: tuple[str, ...],
    out: str | None,
    filter_: str | None,
    max_runs: int | None,
    no_sparklines: bool,
    repo_path: str,
) -> None:
    """Report runs: one HTML file, or with --base Markdown for a pull request.

    Without --base: one self-contained HTML file of EXPERIMENT's runs
    (default: all runs). It has the runs table, every metric's curves and a
    parallel-coordinates plot, with plotly.js and the data inlined: it opens
    offline, in any browser, attached to a pull request or an email. Needs
    the `ui` extra: pip install 'gitxp[ui]'.

    With --format markdown --base REF it prints Markdown for a pull-request
    comment (GitHub, GitLab): per experiment, the branch's FINISHED runs next
    to the base's best run for each metric, with each last value, its
    signed delta to the base best (`+0.019`) and a sparkline, the params
    that differ between the rows, then the commits of REF..HEAD.

    \b
    - branch runs: code commit in REF..HEAD; base runs: FINISHED, code
      commit REF or an ancestor of it. A run with uncommitted changes counts
      by the commit it was made on (its HEAD of the time).
    - direction: -m KEY:max or KEY:min; without one, names with a word like
      loss, error, rmse, nll, wer, latency or time are minimised, the rest
      maximised.
    - no runs on either side: said in the text, exit 0; a REF that names no
      commit: one-line error, exit 1.
    - deterministic (same repository, same bytes) and under 64 KB: fewer
      runs are shown past that, with a note.

    docs/ci.md has every rule and GitHub Actions / GitLab CI jobs that post
    it.

    \b
    Examples:
      gitxp report mnist --out mnist.html
      gitxp report --filter "metrics.acc > 0.9" -n 20 -o best.html
      gitxp report --format markdown --base main
      gitxp report --format markdown --base origin/main -m acc:max -m loss:min -o report.md
    """
    from ..errors import UsageError

    if experiment and experiments:
        raise UsageError("give the experiment either as EXPERIMENT or with -e, not both")
    names = [experiment] if experiment else list(experiments)
    fmt = fmt or ("markdown" if base else "html")
    if fmt == "markdown":
        _markdown(repo_path, base, head, metrics, names, out, filter_, max_runs, no_sparklines)
        return
    if base or metrics or head != "HEAD" or no_sparklines:
        raise UsageError("--base, --head, -m and --no-sparklines go with --format markdown")
    if len(names) > 1:
        raise UsageError("the html report takes one experiment")
    import os

    from ..present.report import report

    path = report(
        repo_path,
        names[0] if names else None,
        out or "report.html",
        filter=filter_,
        max_runs=max_runs or 200,
    )
    size = os.path.getsize(path)
    click.echo(f"wrote {path} ({size / 1e6:.1f} MB)")


def _markdown(
    repo_path: str,
    base: str | None,
    head: str,
    metrics: tuple[str, ...],
    names: list[str],
    out: str | None,
    filter_: str | None,
    max_runs: int | None,
    no_sparklines: bool,
) -> None:
    from ..errors import UsageError
    from ..ops.branch_compare import MAX_RUNS
    from ..present.markdown_report import markdown_report

    if not base:
        raise UsageError("--format markdown needs --base REF, e.g. --base main")
    text = markdown_report(
        repo_path,
        base,
        head,
        metrics,
        names or None,
        filter_,
        max_runs or MAX_RUNS,
        sparklines=not no_sparklines,
    )
    if out is None:
        click.echo(text, nl=False)
        return
    import os

    from ..errors import GitxpError

    tmp = f"{out}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, out)
    except OSError as exc:
        raise GitxpError(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"wrote {out} ({len(text.encode('utf-8')):,} bytes)", err=True)
