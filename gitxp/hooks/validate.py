"""gitxp-validate: check that every run ref holds a readable format-v1 run, and name the broken.

For each `refs/gitxp/runs/<id>`: run.json, params.json and summary.json
parse and agree with the ref's id, in a format this gitxp knows (a newer
one cannot be fully checked, so it is refused: upgrade gitxp); every metrics Parquet part decodes with
the v1 columns; following first parents from the tip reaches the run's
code commit, which exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._text import count
from ._common import guarded, hook_parser, parse_in_repo, say

if TYPE_CHECKING:
    from ..git.repository import GitRepo

NAME = "validate"
MAX_CHAIN = 1_000_000  # a run with more commits than this is surely a cycle or a mistake


@dataclass(frozen=True)
class Problem:
    """What is wrong with one run ref."""

    ref: str
    reason: str


def _metrics_problem(git: GitRepo, tree: str) -> str | None:
    from ..format import schema, storage
    from ..format.metrics import decode_parts

    entry = git.read_tree(tree).get(storage.METRICS_DIR.rstrip("/"))
    if entry is None:
        return None
    for name, (_, sha) in sorted(git.read_tree(entry[1]).items()):
        if not name.endswith(".parquet"):
            continue
        try:  # decode exactly as readers do: Parquet, v1 columns, v1 types
            decode_parts([git.read_blob(sha, limit=schema.max_decode_bytes())])
        except Exception as exc:  # pyarrow raises many kinds for a damaged file
            return f"metrics/{name} does not decode as v1 metrics ({type(exc).__name__}: {exc})"
    return None


def check_run(git: GitRepo, ref: str, commit: str) -> str | None:
    """Why the run at *ref* (tip *commit*) is not a valid format-v1 run, or None when it is."""
    from ..errors import GitxpError
    from ..format.storage import FORMAT_VERSION, STATUSES
    from ..store.record import read_row

    try:
        row = read_row(git, commit)
    except GitxpError as exc:
        return str(getattr(exc, "reason", exc))
    except Exception as exc:  # a missing or damaged object
        return f"unreadable ({type(exc).__name__}: {exc})"
    version = row.get("format") or FORMAT_VERSION
    if version > FORMAT_VERSION:  # read leniently elsewhere, but a guard must see everything
        return (
            f"format {version}, written by a newer gitxp (this one checks format "
            f"{FORMAT_VERSION}); upgrade gitxp (pip install -U gitxp) to validate it"
        )
    run_id = ref.rsplit("/", 1)[-1]
    if row["id"] != run_id:
        return f"run.json says id {row['id']!r}, but the ref is named {run_id!r}"
    if row.get("status") not in STATUSES:
        return f"run.json has an unknown status {row.get('status')!r}"
    try:
        problem = _metrics_problem(git, git.read_commit(commit).tree)
    except Exception as exc:
        problem = f"metrics/ unreadable ({type(exc).__name__}: {exc})"
    if problem:
        return problem
    code = row.get("code_commit")
    sha: str | None = commit
    for _ in range(MAX_CHAIN):
        if sha is None or sha == code:
            break
        try:
            parents = git.read_commit(sha).parents
        except Exception:
            return f"commit {sha[:12]} on its first-parent chain is missing"
        sha = parents[0] if parents else None
    if code is not None and sha != code:
        return f"its first-parent chain does not reach its code commit {code[:12]}"
    if code is not None and not git.has_object(code):
        return f"its code commit {code[:12]} is missing (fetch it, or the run's branch)"
    return None


def validate(git: GitRepo) -> list[Problem]:
    """Every broken run ref of the repository, with the reason."""
    from ..format.refs import shown
    from ..git.refs import RUNS_PREFIX, list_refs, refused_refs

    problems = []
    for ref, commit in sorted(list_refs(git, RUNS_PREFIX).items()):
        reason = check_run(git, ref, commit)
        if reason:
            problems.append(Problem(ref, reason))
    # names a listing passes over (with a warning) are broken refs all the same
    for ref, reason in sorted(refused_refs(git, RUNS_PREFIX).items()):
        problems.append(Problem(shown(ref), f"not a run ref: {reason}"))
    return problems


@guarded(NAME)
def main(argv: Sequence[str] | None = None) -> int:
    """Fail (1) when any run ref is not a valid format-v1 run; 0 otherwise."""
    parser = hook_parser(
        NAME,
        "Check that every run ref holds a readable format-v1 run.",
        "Examples:\n  gitxp hook validate\n  pre-commit run gitxp-validate --hook-stage manual",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Say how many were checked.")
    args, git = parse_in_repo(parser, argv, config=False)
    if git is None:
        return 0
    with git:
        problems = validate(git)
        if args.verbose and not problems:
            from ..git.refs import RUNS_PREFIX, list_refs

            say(NAME, f"{count(len(list_refs(git, RUNS_PREFIX)), 'run')} checked, all valid")
    if not problems:
        return 0
    from ..present.output import render_table

    n = len(problems)
    say(
        NAME,
        f"{n} broken run ref{'s' if n != 1 else ''}:\n"
        + render_table(["ref", "problem"], [[p.ref, p.reason] for p in problems], max_width=200)
        + "\nInspect one with `git log -p <ref>`; remove it with `git update-ref -d <ref>`.",
    )
    return 1
