"""gitxp-no-run-outputs: stop commits that add experiment-tracker output to the code history.

MLflow's `mlruns/`, `wandb/`, `lightning_logs/`, TensorBoard event files,
checkpoints and the like bloat a repository forever once committed. The
hook names every such file and says how to record it with gitxp instead
(on `refs/gitxp/runs/*`, out of the branch history).

Run by pre-commit with the staged file names; as a plain git hook
(no names), it looks at everything staged.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass

from ._common import guarded, hook_parser, parse_in_repo, say
from .config import HooksConfig, format_size, load_hooks_config, parse_size

NAME = "no-run-outputs"


@dataclass(frozen=True)
class Offender:
    """A file the commit should not add, and why."""

    path: str
    reason: str


def _matches(path: str, pattern: str) -> bool:
    """Glob match: a pattern with `/` matches the whole path, else the file name; any case."""
    target = path if "/" in pattern else path.rsplit("/", 1)[-1]
    return fnmatch.fnmatch(target.lower(), pattern.lower())


def _output_dir(path: str, dirs: dict[str, str]) -> str | None:
    parts = path.split("/")[:-1]
    for name in dirs:
        if "/" in name:
            if path.startswith(name.rstrip("/") + "/"):
                return name
        elif name in parts:
            return name
    return None


def find_offenders(files: Sequence[tuple[str, int]], config: HooksConfig) -> list[Offender]:
    """The files among *files* ((path, size) pairs) that are run output, with the reason."""
    found = []
    for path, size in files:
        if any(_matches(path, p) for p in config.allow):
            continue
        directory = _output_dir(path, config.run_output_dirs)
        if directory is not None:
            tool = config.run_output_dirs[directory]
            what = f"{tool} output" if tool else "run output"
            found.append(Offender(path, f"{what} (in {directory}/)"))
            continue
        pattern = next((p for p in config.run_output_files if _matches(path, p)), None)
        if pattern is not None:
            found.append(
                Offender(path, config.run_output_files[pattern] or f"run output ({pattern})")
            )
            continue
        if size > config.max_model_size and any(_matches(path, p) for p in config.model_files):
            found.append(
                Offender(
                    path,
                    f"model or checkpoint file, {format_size(size)} "
                    f"> {format_size(config.max_model_size)}",
                )
            )
    return found


def explain(offenders: Sequence[Offender]) -> str:
    """The message the hook prints: every file, then what to do instead."""
    n = len(offenders)
    lines = [f"{n} file{'s' if n != 1 else ''} look{'s' if n == 1 else ''} like experiment output:"]
    width = min(max(len(o.path) for o in offenders), 60)
    lines += [f"  {o.path.ljust(width)}  {o.reason}" for o in offenders]
    lines += [
        "Record them with gitxp instead, where they stay out of your branch history:",
        "  metrics and params: gitxp.log_metric(...) / gitxp.log_params(...) in a gitxp run",
        "  files and checkpoints: run.log_artifact('path/to/model.ckpt')",
        "Then unstage them (git restore --staged <file>) and add their directories to .gitignore.",
        'To allow a file on purpose: `allow = ["<glob>"]` under [tool.gitxp.hooks] in pyproject.toml.',
    ]
    return "\n".join(lines)


@guarded(NAME)
def main(argv: Sequence[str] | None = None) -> int:
    """Fail (1) when the commit adds run output or large model files; 0 otherwise."""
    parser = hook_parser(
        NAME,
        __doc__.split("\n\n")[0] if __doc__ else None,
        "Examples:\n  gitxp hook no-run-outputs            # everything staged\n"
        "  gitxp hook no-run-outputs model.ckpt wandb/run-1/files/config.yaml",
    )
    parser.add_argument("filenames", nargs="*", help="Files to check (default: all staged).")
    parser.add_argument(
        "--max-model-size", metavar="SIZE", help='Size above which model files fail, e.g. "5MB".'
    )
    parser.add_argument(
        "--allow", action="append", default=[], metavar="GLOB", help="Never flag these paths."
    )
    args, git = parse_in_repo(parser, argv)
    if git is None:
        return 0
    with git:
        git.require_work_tree(f"gitxp hook {NAME}")  # it checks what is staged
        config = load_hooks_config(git.root, args.config)
        if args.max_model_size is not None:
            config.max_model_size = parse_size(args.max_model_size, "--max-model-size", "value")
        config.allow += args.allow
        from ..git.staging import staged_files

        # names are relative to where the hook runs (the top, under pre-commit)
        paths = [os.path.relpath(os.path.abspath(f), git.root) for f in args.filenames]
        staged = staged_files(git, paths or None)
    offenders = find_offenders([(f.path, f.size) for f in staged], config)
    if not offenders:
        return 0
    say(NAME, explain(offenders))
    return 1
