"""What a push is about to send, as git's pre-push hook and pre-commit describe it.

git runs `pre-push <remote-name> <remote-url>` with one line per ref on
stdin: `<local ref> <local sha> <remote ref> <remote sha>`. pre-commit
reads those lines itself and hands its hooks environment variables
instead (PRE_COMMIT_TO_REF, PRE_COMMIT_FROM_REF, PRE_COMMIT_REMOTE_NAME,
...). Both arrive here as one `PushContext`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..git.hashing import HEX_LENGTHS, is_zero

if TYPE_CHECKING:
    from ..git.repository import GitRepo

GITXP_REFS = "refs/gitxp/"
RUNS_REFS = GITXP_REFS + "runs/"


@dataclass(frozen=True)
class PushedRef:
    """One line of pre-push input."""

    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str

    @property
    def is_delete(self) -> bool:
        return is_zero(self.local_sha)  # 40 zeros, or 64 in a SHA-256 repository

    @property
    def is_gitxp(self) -> bool:
        """A push of gitxp's own refs (runs), which the hooks leave alone."""
        return self.local_ref.startswith(GITXP_REFS) or self.remote_ref.startswith(GITXP_REFS)


@dataclass
class PushContext:
    """The remote being pushed to and the refs being pushed (empty when unknown)."""

    remote: str | None = None
    url: str | None = None
    refs: list[PushedRef] = field(default_factory=list)

    @property
    def target(self) -> str | None:
        """What to push runs to: the remote's name when it has one, else its URL."""
        return self.remote or self.url

    def carried_runs(self) -> set[str]:
        """Ids of the runs this push itself sends (a `refs/gitxp/runs/*` refspec in git config).

        The push-runs hook leaves them to git: pushing them first would make
        git's own update of the same refs fail ("failed to update ref").
        """
        return {
            r.local_ref[len(RUNS_REFS) :]
            for r in self.refs
            if not r.is_delete and r.local_ref.startswith(RUNS_REFS) and r.remote_ref == r.local_ref
        }

    def code_refs(self) -> list[PushedRef]:
        """The refs that carry code: not deletions, not gitxp's own refs."""
        return [r for r in self.refs if not r.is_delete and not r.is_gitxp]


def parse_push_lines(text: str) -> list[PushedRef]:
    """Parse git's pre-push stdin; malformed lines are skipped."""
    refs = []
    for line in text.splitlines():
        parts = line.rsplit(maxsplit=3)
        if len(parts) != 4:
            continue
        local_ref, local_sha, remote_ref, remote_sha = parts
        if len(local_sha) not in HEX_LENGTHS or len(remote_sha) != len(local_sha):
            continue
        refs.append(PushedRef(local_ref, local_sha.lower(), remote_ref, remote_sha.lower()))
    return refs


def _read_stdin(environ: Mapping[str, str]) -> str:
    # Under pre-commit stdin carries nothing (it consumed the lines); in a
    # terminal it would wait for typing. Read it only as a plain git hook.
    if environ.get("PRE_COMMIT") == "1" or sys.stdin is None or sys.stdin.isatty():
        return ""
    try:
        return sys.stdin.read()
    except (OSError, ValueError):
        return ""


def push_context(
    git: GitRepo,
    args: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> PushContext:
    """Work out the push in progress from hook *args*, stdin and pre-commit's variables."""
    from ..git.history import resolve_commit

    env = os.environ if environ is None else environ
    remote = args[0] if len(args) > 0 else env.get("PRE_COMMIT_REMOTE_NAME")
    url = args[1] if len(args) > 1 else env.get("PRE_COMMIT_REMOTE_URL")
    text = _read_stdin(env) if stdin is None else stdin
    refs = parse_push_lines(text)
    if not refs:
        local = env.get("PRE_COMMIT_TO_REF")
        if not local and env.get("PRE_COMMIT_LOCAL_BRANCH"):
            # pre-commit leaves TO_REF unset when the push sends the whole history
            local = resolve_commit(git, env["PRE_COMMIT_LOCAL_BRANCH"])
        if local:
            refs = [
                PushedRef(
                    env.get("PRE_COMMIT_LOCAL_BRANCH", "HEAD"),
                    local,
                    env.get("PRE_COMMIT_REMOTE_BRANCH", ""),
                    env.get("PRE_COMMIT_FROM_REF") or git.ids.zero,
                )
            ]
    if remote and url and remote == url:
        remote = None  # `git push <url>`: git passes the URL twice
    return PushContext(remote or None, url or None, refs)


def pushed_commits(git: GitRepo, context: PushContext) -> set[str]:
    """Every commit the push sends: reachable from the pushed tips, not yet on the remote."""
    from ..git.history import new_commits, peel_commit, remote_tips

    include = [c for r in context.code_refs() if (c := peel_commit(git, r.local_sha))]
    exclude = [r.remote_sha for r in context.refs] + remote_tips(git, context.remote)
    return new_commits(git, include, exclude)


def pushed_tips(git: GitRepo, context: PushContext) -> list[str]:
    """The commits the pushed refs will point at (tags peeled), in push order, once each."""
    from ..git.history import peel_commit

    tips: list[str] = []
    for r in context.code_refs():
        commit = peel_commit(git, r.local_sha)
        if commit and commit not in tips:
            tips.append(commit)
    return tips
