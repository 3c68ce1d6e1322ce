"""The `gitxp` command: a lazy click group that turns GitxpErrors into one-line messages.

Subcommands live one module each in this package and are imported only
when used (or listed by --help), so start-up stays fast and never loads
pandas or pyarrow.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any

import click

from ..errors import GitxpError

# command name -> "module:function" inside gitxp.cli
COMMANDS: dict[str, str] = {
    "artifacts": "artifacts:artifacts_group",
    "branch": "manage:branch_command",
    "checkout": "checkout:checkout_command",
    "compare": "diff:compare_command",
    "demo": "demo:demo_command",
    "diff": "diff:diff_command",
    "export": "export:export_group",
    "fetch": "sharing:fetch_command",
    "gc": "manage:gc_command",
    "hook": "hook:hook_command",
    "hooks": "hooks:hooks_command",
    "import": "imports:import_group",
    "init": "init:init_command",
    "log": "log:log_command",
    "model": "model:model_group",
    "note": "manage:note_command",
    "plot": "plot:plot_command",
    "pull": "sharing:pull_command",
    "push": "sharing:push_command",
    "remote": "sharing:remote_group",
    "rename": "manage:rename_command",
    "report": "report:report_command",
    "reproduce": "reproduce:reproduce_command",
    "rm": "manage:rm_command",
    "run": "run:run_command",
    "show": "show:show_command",
    "sweep": "sweep:sweep_command",
    "tag": "manage:tag_command",
    "ui": "ui:ui_command",
}


class CliError(click.ClickException):
    """A GitxpError on its way to the terminal: `error: ...`, exit 1 (2 for usage)."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


_CLI_ERRORS: dict[int, type[CliError]] = {1: CliError}

LOG_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)  # by the number of -v


def cli_error(error: GitxpError) -> CliError:
    """The CliError for *error*, exiting with its exit code.

    click reads the code from the exception's class (a class variable), so
    each code has a subclass of its own.
    """
    code = error.exit_code
    kind = _CLI_ERRORS.get(code)
    if kind is None:

        class CodedCliError(CliError):
            exit_code = code

        kind = _CLI_ERRORS[code] = CodedCliError
    return kind(str(error))


class TerminalHandler(logging.Handler):
    """Shows the text of gitxp's log records on the command's stderr, one line each.

    The stream is looked up per record (click's), so a command run in-process
    by click's test runner gets its own.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:
            self.handleError(record)


def show_logs(verbosity: int) -> Callable[[], None]:
    """Send the `gitxp` logger's records to the terminal for one command; returns the undo.

    WARNING and up by default, INFO with -v, DEBUG with -vv. The records
    stop at this handler (no propagation), so a handler someone configured
    on the root logger does not show them a second time.
    """
    logger = logging.getLogger("gitxp")
    handler = TerminalHandler()
    saved = logger.level, logger.propagate
    logger.setLevel(LOG_LEVELS[min(verbosity, len(LOG_LEVELS) - 1)])
    logger.propagate = False
    logger.addHandler(handler)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]

    return undo


_gc_paused = False


def pause_gc() -> None:
    """Turn the cyclic garbage collector off while the command's modules are imported.

    Importing a command's modules makes many objects that live as long as the
    process, and each full collection the allocations trigger walks them all
    again: about a tenth of a short command's CPU time (`gitxp log`, `gitxp
    run -- true`; docs/performance.md, "Everyday latency"). `resume_gc` turns
    it back on before the command itself runs.
    """
    global _gc_paused
    if gc.isenabled():
        gc.disable()
        _gc_paused = True


def resume_gc() -> None:
    """Undo `pause_gc`: what was imported so far is frozen out of later collections."""
    global _gc_paused
    if _gc_paused:
        _gc_paused = False
        gc.freeze()
        gc.enable()


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command = getattr(import_module(f"gitxp.cli.{module}"), attr)
        return command  # type: ignore[no-any-return]

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GitxpError as exc:
            raise cli_error(exc) from None


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="gitxp", prog_name="gitxp")
@click.option(
    "-v",
    "--verbose",
    "verbosity",
    count=True,
    help="Say more on stderr: -v for progress notes, -vv for debugging detail.",
)
@click.pass_context
def cli(ctx: click.Context, verbosity: int) -> None:
    """gitxp: experiment tracking with nothing to run but git.

    Every run is a commit on its own ref (refs/gitxp/runs/<id>): params,
    metrics, environment, notes and artifacts, on top of the exact code it
    ran, uncommitted changes included. Runs travel with git push/pull.

    \b
    Examples:
      gitxp demo                        # a small project with a few runs, in a minute
      gitxp run -p lr=0.1 -- python train.py   # record any command as a run
      gitxp log -n 5                    # the five newest runs
      gitxp log --filter "metrics.acc > 0.9" --format table
      gitxp show swift-otter-42         # one run, by name or id prefix
      gitxp diff calm-heron-7 swift-otter-42 --code
      gitxp ui                          # the local web UI
      gitxp push                        # share runs through any git remote

    In Python: `with gitxp.start_run(params={...}) as run: run.log_metric(...)`.
    Docs: docs/ in the gitxp repository.
    """
    ctx.call_on_close(show_logs(verbosity))
    resume_gc()  # the subcommand's module is imported by now; its callback runs next


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    pause_gc()
    try:
        cli.main(args=argv, prog_name="gitxp")
    except BrokenPipeError:  # `gitxp log | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: say so in one line unless asked for the traceback
        if os.environ.get("GITXP_DEBUG"):
            raise
        click.echo(
            f"error: internal error: {type(exc).__name__}: {exc} "
            "(set GITXP_DEBUG=1 for the traceback and please report it)",
            err=True,
        )
        sys.exit(1)
    finally:
        resume_gc()  # --help, --version and usage errors never reach the group's callback


if __name__ == "__main__":
    main()
