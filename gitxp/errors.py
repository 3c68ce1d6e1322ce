"""Every failure gitxp expects, as one exception tree.

    GitxpError                       root: the CLI prints its message and exits 1
    ├── NotARepositoryError          no git repository at or above a path
    ├── BareRepositoryError          a command that needs a work tree, in a bare repository
    ├── NoActiveRunError             a module-level call with no run started
    ├── RunNotFoundError             a run reference matches nothing
    ├── AmbiguousRunError            a run reference matches several runs
    ├── RunFinishedError             logging into a run that has already ended
    ├── ParamConflictError           a param logged twice with different values
    ├── InvalidValueError            a value gitxp cannot store (type, key, ...)
    ├── FilterSyntaxError            a malformed filter or order-by string
    ├── CorruptRunError              a run ref whose content does not parse
    ├── ObjectTooLargeError          a git object inflates to more than its reader allows
    ├── RefUpdateError               a ref stayed locked or moved under us
    ├── RunActiveError               editing a run that is still RUNNING
    ├── RunWriteError                a run's commit could not be written (disk full, I/O error)
    ├── CommandNotFoundError         `gitxp run`: CMD cannot be started (exit 127/126)
    ├── NotReproducibleError         a run without a recorded command to re-run
    ├── UncommittedChangesError      checkout would overwrite uncommitted work
    ├── UnsafePathError              a run tree holds a path that must not be written
    ├── ConfigError                  a bad [tool.gitxp.*] setting in pyproject.toml
    ├── RemoteError                  a remote cannot be found, reached or used
    ├── ArtifactError                an artifact cannot be stored, found or fetched
    │   └── ArtifactIntegrityError   downloaded bytes do not match the recorded sha256
    ├── MissingExtraError            an optional package (plotly, psutil, a framework) is missing
    ├── RegistryError                a model registry action that cannot be done as asked
    │   └── ModelNotFoundError       a model, version or stage reference matches nothing
    └── UsageError                   bad command-line usage (the CLI exits 2)

Each error carries the facts (which run, key or path) as attributes and a
message that says what to do.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence


class GitxpError(Exception):
    """Base class of every failure gitxp expects and explains."""

    exit_code = 1


class NotARepositoryError(GitxpError):
    """No git repository was found at or above a path."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"not a git repository (or any parent up to /): {path}; "
            "run `git init` or `gitxp init` there first"
        )


class BareRepositoryError(GitxpError):
    """A command that needs a work tree was run in a bare repository."""

    def __init__(self, path: str, action: str) -> None:
        self.path = path
        self.action = action
        super().__init__(
            f"{action}: {path} is a bare repository (no work tree); "
            "run it in a clone with a work tree"
        )


class NoActiveRunError(GitxpError):
    """A module-level logging call was made with no active run."""

    def __init__(self, call: str) -> None:
        self.call = call
        hint = ""
        if threading.current_thread() is not threading.main_thread():
            hint = (
                f" (the active run is per thread: from a worker thread call run.{call}(...) "
                "or make the run active there with `with gitxp.tracking.activate(run): ...`)"
            )
        super().__init__(
            f"gitxp.{call}() needs an active run; start one with "
            f"`with gitxp.start_run(): ...` or launch the script with `gitxp run -- ...`{hint}"
        )


class RunNotFoundError(GitxpError):
    """A run reference (id, id prefix or name) matched no run."""

    def __init__(self, ref: str, suggestions: Sequence[str] = (), note: str = "") -> None:
        self.ref = ref
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        hint += f"; {note}" if note else ""
        super().__init__(f"no run matches {ref!r}{hint} (list runs with `gitxp log`)")


class AmbiguousRunError(GitxpError):
    """A run reference matched more than one run."""

    def __init__(self, ref: str, candidates: Sequence[str]) -> None:
        self.ref = ref
        self.candidates = list(candidates)
        shown = ", ".join(self.candidates[:8])
        more = f" and {len(self.candidates) - 8} more" if len(self.candidates) > 8 else ""
        super().__init__(
            f"{ref!r} matches {len(self.candidates)} runs ({shown}{more}); give a longer id prefix"
        )


class RunFinishedError(GitxpError):
    """Something was logged into a run that has already been ended."""

    def __init__(self, run_id: str, call: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"run {run_id} has already ended; {call}() must be called before the run ends"
        )


class ParamConflictError(GitxpError):
    """A param was logged twice with two different values."""

    def __init__(self, key: str, old: object, new: object) -> None:
        self.key = key
        self.old = old
        self.new = new
        super().__init__(
            f"param {key!r} is already {old!r} and cannot become {new!r}; "
            "params are fixed once logged: use a new key, or a metric or tag for values that change"
        )


class InvalidValueError(GitxpError):
    """A value gitxp cannot store: wrong type, bad key, non-finite param..."""

    def __init__(self, what: str, message: str) -> None:
        self.what = what
        super().__init__(f"{what}: {message}")


class FilterSyntaxError(GitxpError):
    """A filter or order-by string that does not parse; points at the position."""

    def __init__(self, text: str, position: int, message: str, what: str = "filter") -> None:
        self.text = text
        self.position = position
        self.message = message
        self.what = what
        near = text[position : position + 20] or f"end of {what}"
        example = (
            '"metrics.acc DESC" or ["params.lr", "start_time DESC"]'
            if what == "order_by"
            else '"params.lr > 0.01 and metrics.acc >= 0.9"'
        )
        super().__init__(
            f"invalid {what} at column {position + 1} (near {near!r}): {message}; "
            f"example: {example}"
        )


class CorruptRunError(GitxpError):
    """A run ref exists but its content is not a readable format-v1 run."""

    def __init__(self, run_id: str, reason: str) -> None:
        self.run_id = run_id
        self.reason = reason
        super().__init__(
            f"run {run_id} is not a valid gitxp run ({reason}); "
            "inspect it with `git log refs/gitxp/runs/" + run_id + "`"
        )


class ObjectTooLargeError(GitxpError):
    """A git object declares more bytes than its reader's limit; nothing was inflated.

    Readers of run files turn it into a `CorruptRunError` naming the run and file.
    """

    def __init__(self, sha: str, size: int, limit: int) -> None:
        self.sha = sha
        self.size = size
        self.limit = limit
        super().__init__(
            f"object {sha} inflates to {size:,} bytes, over the {limit:,}-byte limit "
            "of its reader; it was not read"
        )


class RefUpdateError(GitxpError):
    """A ref could not be updated (lock held too long, or moved concurrently)."""

    def __init__(self, ref: str, reason: str) -> None:
        self.ref = ref
        self.reason = reason
        super().__init__(f"could not update {ref}: {reason}")


class RunWriteError(GitxpError):
    """A run's final commit could not be written (disk full, read-only, I/O error).

    *unwritten* points are not in the repository; *spilled* is the Parquet
    file they were saved to instead (None when that failed too); *status* is
    what the run's ref now says (FAILED, or RUNNING when not even that could
    be written: readers show it CRASHED once the process is gone).
    """

    def __init__(
        self, run_id: str, cause: str, unwritten: int, status: str, spilled: str | None
    ) -> None:
        self.run_id = run_id
        self.unwritten = unwritten
        self.status = status
        self.spilled = spilled
        where = f"saved to {spilled}" if spilled else "lost"
        super().__init__(
            f"run {run_id}: could not write to the repository ({cause}); {unwritten:,} "
            f"points are not in it ({where}) and its ref holds the last checkpoint that "
            f"was written, as {status}; free space (or fix the disk) before the next run"
        )


class RunActiveError(GitxpError):
    """A change to a run that is still being recorded."""

    def __init__(self, run_id: str, action: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"run {run_id} is still RUNNING; {action} it after it ends "
            "(a run whose process died shows as CRASHED and can be changed)"
        )


class CommandNotFoundError(GitxpError):
    """`gitxp run` could not start its command (the CLI exits 127, or 126)."""

    def __init__(self, program: str, reason: str, exit_code: int = 127) -> None:
        self.program = program
        self.exit_code = exit_code
        super().__init__(f"cannot run {program!r}: {reason}")


class NotReproducibleError(GitxpError):
    """A run that has no recorded command, so there is nothing to re-run."""

    def __init__(self, run_id: str, reason: str, hint: str | None = None) -> None:
        self.run_id = run_id
        super().__init__(
            f"run {run_id} cannot be reproduced: {reason}; "
            + (
                hint
                or "record runs with `gitxp run -- CMD` (or from a script with gitxp.start_run) "
                "to make them reproducible"
            )
        )


class UncommittedChangesError(GitxpError):
    """A checkout would overwrite work that is not committed; nothing was changed."""

    def __init__(self, paths: Sequence[str], hint: str) -> None:
        self.paths = list(paths)
        shown = ", ".join(self.paths[:10])
        more = f" and {len(self.paths) - 10} more" if len(self.paths) > 10 else ""
        super().__init__(f"uncommitted changes would be overwritten: {shown}{more}; {hint}")


class UnsafePathError(GitxpError):
    """A tree holds a path that would escape the target directory or write into .git."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        super().__init__(
            f"refusing to write {path!r}: {reason}; the run may come from an untrusted "
            "repository, nothing was written outside the target"
        )


class RemoteError(GitxpError):
    """A remote that cannot be resolved, reached or used for a push or fetch."""

    def __init__(self, remote: str, reason: str) -> None:
        self.remote = remote
        self.reason = reason
        super().__init__(f"remote {remote}: {reason}")


class ArtifactError(GitxpError):
    """An artifact that cannot be logged, found, uploaded or downloaded."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"artifact {what}: {reason}")


class ArtifactIntegrityError(ArtifactError):
    """Bytes read from an artifact store do not hash to the sha256 the run recorded."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            what,
            f"sha256 is {actual[:16]}... but the run recorded {expected[:16]}...; "
            "the stored copy is corrupt or was replaced; nothing was written",
        )


class ConfigError(GitxpError):
    """A setting under [tool.gitxp] in pyproject.toml is missing, misspelt or of the wrong type."""

    def __init__(self, path: str, key: str, message: str) -> None:
        self.path = path
        self.key = key
        super().__init__(f"{path}: {key}: {message} (see docs/hooks.md)")


class MissingExtraError(GitxpError):
    """A feature needs an optional package that is not installed; names the extra to install."""

    def __init__(self, feature: str, package: str, extra: str, install: str | None = None) -> None:
        self.feature = feature
        self.package = package
        self.extra = extra
        how = install or f"install it with `pip install 'gitxp[{extra}]'`"
        super().__init__(f"{feature} needs {package}, which is not installed; {how}")


class RegistryError(GitxpError):
    """A model registry action that cannot be done as asked (a version that exists, a stage
    that is not assigned, a tag git refuses)."""

    def __init__(self, model: str, message: str) -> None:
        self.model = model
        super().__init__(message)


class ModelNotFoundError(RegistryError):
    """A model, version or stage reference (`churn`, `churn@v1.0.0`, `churn#prod`) matches
    nothing in the model registry."""

    def __init__(self, reference: str, reason: str, suggestions: Sequence[str] = ()) -> None:
        self.reference = reference
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(
            reference.split("@")[0].split("#")[0],
            f"no model matches {reference!r}: {reason}{hint} (list models with `gitxp model list`)",
        )


class UsageError(GitxpError):
    """Bad command-line usage; the CLI exits with status 2."""

    exit_code = 2
