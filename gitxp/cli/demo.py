"""`gitxp demo`: see gitxp work in under a minute, in a project of its own."""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
from typing import Any

import click

from ..present.output import fmt_duration, fmt_value


def _activation_hint() -> str | None:
    """`source .../bin/activate` when gitxp runs from a virtualenv that is not on PATH."""
    bin_dir = os.path.dirname(sys.executable)
    on_path = [os.path.realpath(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    activate = os.path.join(bin_dir, "activate")
    if sys.prefix == sys.base_prefix or os.path.realpath(bin_dir) in on_path:
        return None
    return f"source {shlex.quote(activate)}" if os.path.exists(activate) else None


def _step(text: str, color: bool) -> None:
    click.echo("")
    click.echo(click.style(text, bold=True) if color else text)


@click.command("demo")
@click.option(
    "--path",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to create the demo project (new or empty; default: a new temporary directory).",
)
def demo_command(path: str | None) -> None:
    """Create a small iris project, record a sweep, then log, diff and reproduce it.

    The project (scikit-learn logistic regression on the iris flowers) gets
    its own git repository; six runs are recorded with `gitxp run`, then the
    demo shows `gitxp log`, the diff of the best and worst runs, and
    reproduces the best one from its recorded code. Needs scikit-learn:
    pip install 'gitxp[demo]'.

    \b
    Examples:
      gitxp demo
      gitxp demo --path ./gitxp-demo
    """
    from ..ops import demo
    from ..ops.compare import diff
    from .diff import render_text
    from .log import log_command

    color = sys.stdout.isatty()
    started = time.monotonic()
    demo.check_target(path)
    demo.require_sklearn()
    target = demo.create_project(path)
    _step(f"1. A project with its own git repository: {target}", color)
    click.echo("   train.py fits a logistic regression on the iris flowers and logs with gitxp.")

    _step(f"2. A sweep of {len(demo.SWEEP)} runs, recorded with `gitxp run` (two at a time)", color)
    lock = threading.Lock()

    def done(overrides: dict[str, Any], result: Any) -> None:
        with lock:
            click.echo(
                f"   $ {demo.command_line(overrides)}\n"
                f"     -> {result.name}: {result.status} in {fmt_duration(result.wall_time)}"
            )

    demo.record_sweep(target, done)

    order = "metrics.accuracy DESC"
    _step(f'3. $ gitxp log --oneline --order-by "{order}"', color)
    ctx = click.get_current_context()
    ctx.invoke(
        log_command,
        max_count=None,
        experiment=(),
        filter_=None,
        order_by=(order,),
        oneline=True,
        fmt="log",
        repo_path=target,
    )

    best, worst = demo.best_and_worst(target)
    _step(
        f"4. $ gitxp diff {shlex.quote(best['name'])} {shlex.quote(worst['name'])}    (best vs worst)",
        color,
    )
    click.echo(render_text(diff(best["id"], worst["id"], repo=target)))

    result = _reproduce(best, target, color)
    _step(f"Done in {time.monotonic() - started:.0f}s. The runs live in {target}", color)
    _next_steps(target, best, worst, result.run_name or "")
    if result.exit_status != 0:
        sys.exit(result.exit_status)


def _reproduce(best: dict[str, Any], target: str, color: bool) -> Any:
    """Step 5: reproduce the best run from its recorded code and show the metrics' check."""
    from ..ops.reproduce import reproduce
    from .reproduce import checks_table

    _step(
        f"5. $ gitxp reproduce {shlex.quote(best['name'])}    (re-run from its recorded code)",
        color,
    )
    result = reproduce(best["id"], repo=target, stream=False)
    assert result.run_name is not None  # only a dry run has no new run
    click.echo(f"   command: {shlex.join(['python', *result.plan.argv[1:]])} in a fresh checkout")
    click.echo(checks_table(result.checks, with_diff=False))
    if result.exit_status == 0:
        click.echo(
            f"   REPRODUCED: all {len(result.checks)} metrics match (new run {result.run_name})"
        )
    else:
        click.echo(f"   {result.verdict.upper()}: {', '.join(result.drifted) or result.status}")
    return result


def _next_steps(target: str, best: dict[str, Any], worst: dict[str, Any], rerun: str) -> None:
    """The commands to try next, on the demo's runs (*rerun*: the reproduction's name)."""
    click.echo("as git refs (refs/gitxp/runs/*), next to the code. Try:")
    activate = _activation_hint()
    if activate:
        click.echo(f"  {activate}    # puts gitxp and this python on PATH")
    click.echo(f"  cd {shlex.quote(target)}")
    click.echo(f"  gitxp show {shlex.quote(best['name'])}")
    click.echo(
        f"  gitxp compare {shlex.quote(best['name'])} {shlex.quote(worst['name'])} {shlex.quote(rerun)}"
    )
    click.echo("  gitxp run -e iris -p C=3 -p epochs=30 -- python train.py")
    click.echo(
        f'  gitxp log --filter "metrics.accuracy >= {fmt_value(best["metrics"]["accuracy"])}"'
    )
    click.echo(f"  gitxp checkout {shlex.quote(best['name'])} --path /tmp/best-iris")
    click.echo("  git log --glob=refs/gitxp/runs --oneline")
