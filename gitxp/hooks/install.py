"""Plain git hooks for people who do not use pre-commit: write, chain and remove them.

`install()` writes small POSIX-shell scripts into the repository's hooks
directory (`core.hooksPath` when set, else `.git/hooks`). A hook that is
already there and is not gitxp's is kept as `<hook>.before-gitxp` and run
first, so nothing the user had stops working; `uninstall()` puts it back.
The same scripts, with no interpreter baked in, are in `hooks/` of the
gitxp repository for copying by hand.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import GitxpError, InvalidValueError

MARKER = "# gitxp-hook-script v1"
CHAINED_SUFFIX = ".before-gitxp"
# git hook -> the gitxp checks it runs, in order
HOOK_TYPES: dict[str, tuple[str, ...]] = {
    "pre-commit": ("no-run-outputs",),
    "pre-push": ("metric-gate", "push-runs"),
}


@dataclass(frozen=True)
class HookChange:
    """What `install`/`uninstall` did to one git hook."""

    hook_type: str
    path: str
    action: str  # installed | updated | unchanged | removed | restored | absent | foreign
    chained: str | None = None  # the user's earlier hook, now run first

    def to_dict(self) -> dict[str, str | None]:
        return {
            "hook": self.hook_type,
            "path": self.path,
            "action": self.action,
            "chained": self.chained,
        }


def render_script(hook_type: str, python: str | None = None) -> str:
    """The shell script for git hook *hook_type*; *python* runs gitxp when it exists."""
    checks = HOOK_TYPES[hook_type]
    reads_stdin = hook_type == "pre-push"  # git sends the pushed refs on stdin
    skip = "git push --no-verify" if hook_type == "pre-push" else "git commit --no-verify"
    quoted = "'" + (python or "").replace("'", "'\\''") + "'"
    lines = [
        "#!/bin/sh",
        f"{MARKER}: {hook_type}",
        f"# Runs gitxp's {hook_type} checks: {', '.join(checks)} (see docs/hooks.md).",
        "# Installed by `gitxp hooks install`, or copied from hooks/ of the gitxp repository.",
        f"# A hook that was here before is kept as {hook_type}{CHAINED_SUFFIX} and runs first.",
        f"# Skip everything once with `{skip}`; skip one check with GITXP_SKIP={checks[-1]}.",
        f"GITXP_PYTHON={quoted}",
        'hook_dir=$(dirname "$0")',
        "",
        "gitxp() {",
        '    if [ -n "$GITXP_PYTHON" ] && [ -x "$GITXP_PYTHON" ]; then',
        '        "$GITXP_PYTHON" -m gitxp.cli.main "$@"',
        "    elif command -v gitxp >/dev/null 2>&1; then",
        '        command gitxp "$@"',
        "    else",
        f'        echo "gitxp: the {hook_type} hook needs gitxp on PATH (pip install gitxp);'
        f' to bypass it once: {skip}" >&2',
        "        return 1",
        "    fi",
        "}",
        "",
    ]
    previous = f'"$hook_dir/{hook_type}{CHAINED_SUFFIX}"'
    if reads_stdin:
        feed = "printf '%s\\n' \"$input\" | "
        lines += ["input=$(cat)"]
    else:
        feed = ""
    lines += [
        f"if [ -x {previous} ]; then",
        f'    {feed}{previous} "$@" || exit $?',
        "fi",
    ]
    lines += [f'{feed}gitxp hook {check} "$@" || exit $?' for check in checks]
    return "\n".join(lines) + "\n"


def hooks_dir(git_root: str, git_dir: str, hooks_path: str | None) -> str:
    """Where git looks for hooks: `core.hooksPath` (relative to the work tree) or .git/hooks."""
    if hooks_path:
        return os.path.normpath(os.path.join(git_root, os.path.expanduser(hooks_path)))
    return os.path.join(git_dir, "hooks")


def _is_ours(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return MARKER.encode() in f.read(4096)
    except OSError:
        return False


def _write_executable(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".gitxp-hook-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _hook_types(hook_types: Sequence[str] | None) -> list[str]:
    chosen = list(hook_types or HOOK_TYPES)
    for name in chosen:
        if name not in HOOK_TYPES:
            raise InvalidValueError(
                "hook type", f"{name!r} is not one gitxp offers ({', '.join(HOOK_TYPES)})"
            )
    return chosen


def _locate(repo: str, action: str | None = None) -> str:
    from ..git.repository import GitRepo

    with GitRepo.discover(repo) as git:
        if action is not None:  # commit and push hooks never run in a bare repository
            git.require_work_tree(action)
        return hooks_dir(git.root, git.git_dir, git.config_value("core", "hooksPath"))


def install(
    repo: str = ".",
    hook_types: Sequence[str] | None = None,
    force: bool = False,
    python: str | None = None,
) -> list[HookChange]:
    """Install gitxp's git hooks (pre-commit, pre-push by default) in the repository at *repo*.

    An existing hook that is not gitxp's is renamed `<hook>.before-gitxp`
    and chained. If such a file already exists too, *force* is needed.
    """
    directory = _locate(repo, "gitxp hooks install")
    os.makedirs(directory, exist_ok=True)
    interpreter = sys.executable if python is None else python
    changes = []
    for hook_type in _hook_types(hook_types):
        path = os.path.join(directory, hook_type)
        chained_path = path + CHAINED_SUFFIX
        text = render_script(hook_type, interpreter)
        chained = chained_path if os.path.exists(chained_path) else None
        if os.path.lexists(path) and not _is_ours(path):
            if chained and not force:
                raise GitxpError(
                    f"{path} is not gitxp's hook and {chained_path} already exists; "
                    "merge them by hand, or pass --force to replace the older one"
                )
            os.replace(path, chained_path)
            chained = chained_path
            action = "installed"
        elif os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                action = "unchanged" if f.read() == text else "updated"
        else:
            action = "installed"
        if action != "unchanged":
            _write_executable(path, text)
        changes.append(HookChange(hook_type, path, action, chained))
    return changes


def uninstall(repo: str = ".", hook_types: Sequence[str] | None = None) -> list[HookChange]:
    """Remove gitxp's git hooks, putting back the hooks they had chained."""
    directory = _locate(repo)
    changes = []
    for hook_type in _hook_types(hook_types):
        path = os.path.join(directory, hook_type)
        chained_path = path + CHAINED_SUFFIX
        if not os.path.lexists(path):
            changes.append(HookChange(hook_type, path, "absent"))
        elif not _is_ours(path):
            changes.append(HookChange(hook_type, path, "foreign"))
        elif os.path.exists(chained_path):
            os.replace(chained_path, path)
            changes.append(HookChange(hook_type, path, "restored"))
        else:
            os.unlink(path)
            changes.append(HookChange(hook_type, path, "removed"))
    return changes
