"""`gitxp sweep -p KEY=V1,V2 ... -- CMD`: a grid or random search through `gitxp run`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from .._text import count
from ..errors import UsageError
from ..present.output import dump_json, fmt_duration, fmt_value, render_table
from ._options import format_option, repo_option


@click.command(
    "sweep",
    context_settings={"allow_interspersed_args": False},  # options stop at CMD
)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=V1,V2,...",
    help="A param and the values to try (typed like `gitxp run -p`); with --optuna, "
    "KEY=SPEC. Repeatable.",
)
@click.option(
    "--random",
    "random_n",
    type=int,
    default=None,
    metavar="N",
    help="Run N random points of the grid.",
)
@click.option("--seed", type=int, default=None, help="Seed for --random or the --optuna sampler.")
@click.option(
    "-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Runs at once."
)
@click.option("--metric", default=None, metavar="KEY", help="Rank the runs by this metric.")
@click.option(
    "--goal",
    type=click.Choice(["max", "min"]),
    default="max",
    show_default=True,
    help="Best is max or min.",
)
@click.option(
    "--optuna",
    "use_optuna",
    is_flag=True,
    help="Let Optuna choose the params (-p KEY=SPEC: loguniform(a,b), uniform(a,b), "
    "int(a,b), choice(x,y)); needs --study and --metric.",
)
@click.option("--study", default=None, metavar="NAME", help="--optuna: the study (shared).")
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="--optuna: trials this process runs.",
)
@click.option(
    "--sampler",
    type=click.Choice(["tpe", "cmaes", "random"]),
    default="tpe",
    show_default=True,
    help="--optuna: how params are chosen.",
)
@click.option(
    "--storage",
    default=None,
    metavar="URL|PATH",
    help="--optuna: Optuna storage URL or journal file [default: .git/gitxp/optuna/<study>.log].",
)
@click.option("-e", "--experiment", default=None, help="Experiment of the runs.")
@click.option(
    "-n", "--name", default=None, help="Run names are NAME-1, NAME-2, ... (--optuna: NAME-<trial>)"
)
@click.option(
    "--print-commands",
    is_flag=True,
    help="Print one `gitxp run` command per point instead of running them (for Slurm, parallel).",
)
@format_option("table", "json", default="table")
@repo_option
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- CMD...")
def sweep_command(
    params: tuple[str, ...],
    random_n: int | None,
    seed: int | None,
    jobs: int,
    metric: str | None,
    goal: str,
    experiment: str | None,
    name: str | None,
    print_commands: bool,
    use_optuna: bool,
    study: str | None,
    trials: int,
    sampler: str,
    storage: str | None,
    fmt: str,
    repo_path: str,
    cmd: tuple[str, ...],
) -> None:
    """Run CMD over a grid of params (or --random N points of it), J at a time.

    Each point is one `gitxp run`: its params are the run's params, and
    {KEY} in CMD is replaced by the point's value. Every run is tagged
    gitxp.sweep=<id>. The sweep ends with the runs ranked by --metric and
    exits 1 if any run failed.

    \b
    Examples:
      gitxp sweep -p lr=0.001,0.01,0.1 -p bs=32,64 --jobs 2 --metric acc -- python train.py
      gitxp sweep -p C=0.1,1,10 --random 2 --seed 0 -- python train.py --C {C}
      gitxp sweep -p lr=0.01,0.1 --print-commands -- python train.py > jobs.txt
      parallel -j 8 < jobs.txt        # or one line per Slurm array task; then gitxp push
      gitxp sweep --optuna --study lr --trials 20 --metric acc -p 'lr=loguniform(1e-4,1e-1)' \\
          -p 'layers=int(1,4)' -p 'opt=choice(adam,sgd)' -- python train.py --lr {lr}

    With --optuna, Optuna's sampler (--sampler) picks each run's params
    from the -p search space, learning from the --metric of the runs so
    far. The study is kept in Optuna's storage (--storage), so sweeps on
    several machines can work on one study at once, each recording its
    runs (tagged optuna.study and optuna.trial) to push as usual.
    """
    from ..ops.sweep import parse_grid, plan, sweep, sweep_commands
    from ..tracking.options import RunOptions

    argv = list(cmd)
    if use_optuna:
        _optuna(
            params,
            argv,
            study,
            trials,
            sampler,
            storage,
            random_n,
            print_commands,
            jobs,
            metric,
            goal,
            experiment,
            name,
            fmt,
            repo_path,
            seed,
        )
        return
    if study is not None or storage is not None:
        raise UsageError("--study and --storage go with --optuna")
    grid = parse_grid(params)
    if print_commands:
        for line in sweep_commands(
            argv, grid, random=random_n, seed=seed, experiment=experiment, name=name
        ):
            click.echo(line)
        return

    result = sweep(
        argv,
        plan(grid, random_n, seed),
        RunOptions(experiment=experiment),
        name=name,
        jobs=jobs,
        metric=metric,
        goal=goal,
        repo=repo_path,
        stream=jobs == 1 and fmt != "json",
        on_done=_progress(fmt),
    )
    _report(result, list(grid), metric, fmt)
    if result.failed:
        sys.exit(1)


def _progress(fmt: str) -> Callable[[dict[str, Any], int, int], None]:
    """What to say on stderr as each run ends (nothing in JSON mode)."""

    def done(entry: dict[str, Any], n: int, total: int) -> None:
        if fmt == "json":
            return
        point = " ".join(f"{k}={fmt_value(v)}" for k, v in entry["params"].items())
        trial = f" trial {entry['trial']}" if "trial" in entry else ""
        click.echo(
            f"[{n}/{total}]{trial} {entry['name']} {point}: {entry['status']} "
            f"in {fmt_duration(entry['wall_time'])}",
            err=True,
        )

    return done


def _report(result: Any, keys: list[str], metric: str | None, fmt: str) -> None:
    """The sweep's runs, ranked: a table (or JSON), then the best one."""
    if fmt == "json":
        click.echo(dump_json(result.to_dict()))
        return
    headers = ["rank", "run", "id", "status", *keys]
    if metric:
        headers.append(f"metrics.{metric}")
    rows = []
    for i, r in enumerate(result.ranked, 1):
        cells = [str(i), r["name"], r["run_id"][:12], r["status"]]
        cells += [fmt_value(r["params"].get(k)) for k in keys]
        if metric:
            cells.append(fmt_value(r["value"]))
        rows.append(cells)
    click.echo(
        f"sweep {result.sweep_id}: {count(len(result.runs), 'run')}, {len(result.failed)} failed"
    )
    click.echo(render_table(headers, rows))
    if result.best is not None:
        click.echo(f"best: {result.best['name']} ({metric} = {fmt_value(result.best['value'])})")


def _optuna(
    params: tuple[str, ...],
    argv: list[str],
    study: str | None,
    trials: int,
    sampler: str,
    storage: str | None,
    random_n: int | None,
    print_commands: bool,
    jobs: int,
    metric: str | None,
    goal: str,
    experiment: str | None,
    name: str | None,
    fmt: str,
    repo_path: str,
    seed: int | None,
) -> None:
    """`gitxp sweep --optuna`: the study's trials as runs, then the ranking."""
    from ..ops.optuna_sweep import StudySettings, optuna_sweep, parse_space
    from ..tracking.options import RunOptions

    if random_n is not None or print_commands:
        raise UsageError("--random and --print-commands are for grid sweeps, not --optuna")
    if not study:
        raise UsageError("--optuna needs --study NAME (sweeps on other machines can share it)")
    if not metric:
        raise UsageError("--optuna needs --metric KEY: the value of each run told to Optuna")
    space = parse_space(params)
    settings = StudySettings(study, trials, metric, goal, sampler, seed, storage)
    result = optuna_sweep(
        argv,
        space,
        RunOptions(experiment=experiment),
        settings,
        name=name,
        jobs=jobs,
        repo=repo_path,
        stream=jobs == 1 and fmt != "json",
        on_done=_progress(fmt),
    )
    _report(result, list(space), metric, fmt)
    best = result.study["best"] if result.study else None
    if fmt != "json" and result.study is not None:
        total = count(result.study["trials"], "trial")
        where = (
            f"best: trial {best['trial']} ({metric} = {fmt_value(best['value'])}" if best else ""
        )
        if best and best.get("run_id"):
            where += f", run {best['run_id'][:12]}"
        click.echo(f"study {result.study['name']}: {total}" + (f"; {where})" if best else ""))
    if result.interrupted:
        click.echo("stopped: a run was interrupted; the study keeps what was done", err=True)
        sys.exit(130)
    if result.failed:
        sys.exit(1)
