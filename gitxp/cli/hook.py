"""`gitxp hook <name>`: run one of gitxp's commit/push checks (what pre-commit and git hooks call)."""

from __future__ import annotations

import click

# name -> one-line summary (kept here so `gitxp hook --help` imports nothing else)
SUMMARIES = {
    "metric-gate": "Check the pushed commit's newest finished run against [tool.gitxp.gate].",
    "no-run-outputs": "Fail when a commit adds mlruns/, wandb/, event files or big checkpoints.",
    "push-runs": "Push the runs recorded on the commits being pushed to the same remote.",
    "validate": "Check that every run ref is a readable format-v1 run.",
}


class HookGroup(click.Group):
    """Subcommands that hand their raw arguments to the hook's own parser."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUMMARIES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUMMARIES:
            return None

        @click.pass_context
        def run(ctx: click.Context, args: tuple[str, ...]) -> None:
            from ..hooks import run_hook

            ctx.exit(run_hook(cmd_name, args))

        return click.Command(
            cmd_name,
            callback=run,
            params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
            help=SUMMARIES[cmd_name] + f"\n\nOptions: `gitxp hook {cmd_name} --help`.",
            short_help=SUMMARIES[cmd_name],
            add_help_option=False,  # --help goes to the hook, which knows its options
            context_settings={"ignore_unknown_options": True, "allow_extra_args": False},
        )


@click.group("hook", cls=HookGroup)
def hook_command() -> None:
    """Run one of gitxp's hooks, as pre-commit or a git hook script would.

    Each exits 0 when all is well (quietly), 1 when the commit or push
    should stop, and does nothing outside a git repository. Settings live
    under [tool.gitxp.hooks] and [tool.gitxp.gate] of pyproject.toml; set
    GITXP_SKIP=name[,name] to skip some. See docs/hooks.md.

    \b
    Examples:
      gitxp hook no-run-outputs                 # check what is staged
      gitxp hook metric-gate                    # gate HEAD's newest finished run
      gitxp hook metric-gate --commit v1.0 --require "metrics.acc >= 0.9"
      gitxp hook validate                       # find broken run refs
      gitxp hook push-runs origin               # push the runs of unpushed commits
    """
