"""`gitxp.reproduce()`: re-run a run's recorded command on its exact code and check the results.

The code commit is written into a temporary directory (the user's work
tree is never touched), the recorded command runs there through
`gitxp.launch` with the params given on its original command line and the
recorded allow-listed environment variables, and the result is a new run
linked to the original (`reproduces` in run.json, tag `reproduces`).
Every final metric of the original is compared with the new one within
`rtol`/`atol` (|new - old| <= atol + rtol * |old|; NaN matches NaN).

What it cannot pin down is reported rather than hidden: variables that
were not allow-listed (so not recorded), files outside the repository,
the installed packages (their differences are listed).
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import GitxpError, NotReproducibleError, UnsafePathError
from ..format.values import non_negative
from ._repoarg import RepoArg, opened

if TYPE_CHECKING:
    from ..store.record import RunRecord
    from ..store.repo import Repo
    from .launch import LaunchResult

log = logging.getLogger("gitxp.ops.reproduce")
DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-9
# Variables that describe where a run ran rather than configure it: never replayed.
NOT_REPLAYED = frozenset(
    {
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "GITXP_RUN_ID",
        "GITXP_RUN_REPO",
        "GITXP_ENV_ALLOW",
    }
)
# Variables that make a loader, shell or interpreter run code or read it from
# elsewhere. A run's env.json is data anyone could have written (a pulled run):
# replaying these would let it run code that is not in the run's code commit.
# They are never replayed, whatever the allow-list says; the reproduction sees
# your own values.
NEVER_REPLAYED = frozenset(
    {
        "PATH",
        "ENV",
        "BASH_ENV",
        "SHELL",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "PROMPT_COMMAND",
        "IFS",
        "CDPATH",
        "ZDOTDIR",
        "HOME",
        "TMPDIR",
        "NODE_OPTIONS",
        "NODE_PATH",
        "PERL5OPT",
        "PERL5LIB",
        "PERLLIB",
        "PERL5DB",
        "RUBYOPT",
        "RUBYLIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "CLASSPATH",
        "LUA_INIT",
        "LUA_PATH",
        "LUA_CPATH",
        "R_PROFILE",
        "R_PROFILE_USER",
        "R_ENVIRON",
        "R_ENVIRON_USER",
        "GCONV_PATH",
        "LOCPATH",
        "HOSTALIASES",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    }
)
NEVER_REPLAYED_PREFIXES = ("LD_", "DYLD_", "BASH_FUNC_", "GIT_", "PYTHON")
# Python's variables that only tune the interpreter (the rest load code: PYTHONPATH,
# PYTHONSTARTUP, PYTHONHOME, PYTHONBREAKPOINT, PYTHONWARNINGS' categories, ...).
PYTHON_TUNING = frozenset(
    {
        "PYTHONHASHSEED",
        "PYTHONOPTIMIZE",
        "PYTHONUNBUFFERED",
        "PYTHONIOENCODING",
        "PYTHONUTF8",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONFAULTHANDLER",
    }
)
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
EXIT_MATCH, EXIT_DRIFT, EXIT_FAILED = 0, 1, 2


def never_replayed(name: str) -> bool:
    """True for a variable that loads or runs code (`LD_PRELOAD`, `BASH_ENV`, `PATH`,
    `PYTHONPATH`, `NODE_OPTIONS`, a CUDA injection or NCCL plugin path, ...)."""
    upper = name.upper()
    if upper in PYTHON_TUNING:
        return False
    return (
        upper in NEVER_REPLAYED
        or upper.startswith(NEVER_REPLAYED_PREFIXES)
        or "INJECTION" in upper
        or "PLUGIN" in upper
        or "PROXY" in upper
    )


@dataclass(frozen=True)
class Plan:
    """What reproducing a run will do."""

    run_id: str
    name: str
    code_commit: str
    argv: list[str]
    cwd: str
    params: dict[str, Any]
    set_env: dict[str, str]
    unset_env: list[str]
    redacted: list[str]
    # recorded variables not replayed, each with the reason (unsafe, not allow-listed, ...)
    refused_env: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MetricCheck:
    """One final metric of the original run against its reproduction."""

    key: str
    original: float | None
    reproduced: float | None
    abs_diff: float | None
    rel_diff: float | None
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        from ..format.values import json_float

        out = asdict(self)
        for k in ("original", "reproduced", "abs_diff", "rel_diff"):
            if isinstance(out[k], float):
                out[k] = json_float(out[k])
        return out


@dataclass
class ReproduceResult:
    """The outcome of `reproduce`: the new run, every metric check and the verdict."""

    plan: Plan
    dry_run: bool
    run_id: str | None = None
    run_name: str | None = None
    status: str | None = None
    exit_code: int | None = None
    checks: list[MetricCheck] = field(default_factory=list)
    new_metrics: list[str] = field(default_factory=list)
    params_changed: dict[str, list[Any]] = field(default_factory=dict)
    packages_changed: dict[str, list[Any]] = field(default_factory=dict)
    kept: str | None = None

    @property
    def drifted(self) -> list[str]:
        return [c.key for c in self.checks if not c.ok]

    @property
    def exit_status(self) -> int:
        """0 when every metric matched, 1 when some drifted, 2 when the command failed."""
        if self.dry_run:
            return EXIT_MATCH
        if self.status != "FINISHED":
            return EXIT_FAILED
        return EXIT_DRIFT if self.drifted else EXIT_MATCH

    @property
    def verdict(self) -> str:
        return {EXIT_MATCH: "match", EXIT_DRIFT: "drift", EXIT_FAILED: "failed"}[self.exit_status]

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": {"id": self.plan.run_id, "name": self.plan.name},
            "plan": self.plan.to_dict(),
            "dry_run": self.dry_run,
            "run_id": self.run_id,
            "run_name": self.run_name,
            "status": self.status,
            "exit_code": self.exit_code,
            "verdict": None if self.dry_run else self.verdict,
            "drifted": self.drifted,
            "checks": [c.to_dict() for c in self.checks],
            "new_metrics": self.new_metrics,
            "params_changed": self.params_changed,
            "packages_changed": self.packages_changed,
            "kept": self.kept,
        }


def check_metric(
    key: str, original: float | None, reproduced: float | None, rtol: float, atol: float
) -> MetricCheck:
    """Compare one final value: |new - old| <= atol + rtol * |old|, NaN equal to NaN."""
    if original is None or reproduced is None:
        return MetricCheck(key, original, reproduced, None, None, original is reproduced)
    if math.isnan(original) or math.isnan(reproduced):
        ok = math.isnan(original) and math.isnan(reproduced)
        return MetricCheck(key, original, reproduced, None, None, ok)
    if math.isinf(original) or math.isinf(reproduced):
        return MetricCheck(key, original, reproduced, None, None, original == reproduced)
    delta = abs(reproduced - original)
    rel = None if original == 0 else delta / abs(original)
    return MetricCheck(key, original, reproduced, delta, rel, delta <= atol + rtol * abs(original))


def _safe_cwd(cwd: object, run_id: str) -> str:
    if not isinstance(cwd, str) or not cwd or cwd == ".":
        return "."
    from ..git.checkout import check_path

    try:
        check_path(cwd.strip("/"), lambda _part: True)
    except UnsafePathError:
        raise NotReproducibleError(run_id, f"its recorded directory {cwd!r} is unsafe") from None
    return cwd.strip("/")


def _hidden(argv: list[str], positions: list[Any]) -> str:
    """Which arguments were redacted, by the flag they belong to where there is one."""
    names = []
    for i in positions:
        if not isinstance(i, int) or not 0 <= i < len(argv):
            continue
        arg = argv[i]
        if "=" in arg and arg.startswith("-"):
            names.append(f"the value of {arg.partition('=')[0]}")
        elif i > 0 and argv[i - 1].startswith("-"):
            names.append(f"the value of {argv[i - 1]}")
        else:
            names.append(f"argument {i}")
    return ", ".join(names)


def refuse_bare(repo: RepoArg = ".") -> None:
    """Raise BareRepositoryError in a bare repository: a reproduction records a run there."""
    with opened(repo) as r:
        r.git.require_work_tree("gitxp reproduce")


def plan(run: str, *, repo: RepoArg = ".") -> Plan:
    """What `reproduce` would run for *run*, without running it."""
    with opened(repo) as r:
        record = r.run(run)
        if record.status == "RUNNING":
            raise NotReproducibleError(record.id, "it is still running; wait until it ends")
        command = record.meta.get("command") or {}
        argv, params = _replay_command(record.id, command)
        cwd = _safe_cwd(command.get("cwd"), record.id)
        code = record.code_commit
        if not code or not r.git.has_object(code):
            raise NotReproducibleError(record.id, "its code commit is not in this repository")
        env = record.env
        variables = env.get("variables")
        recorded = dict(variables) if isinstance(variables, dict) else {}
        listed = env.get("redacted")
        redacted = (
            sorted({n for n in listed if isinstance(n, str)}) if isinstance(listed, list) else []
        )
        extra = frozenset(
            n.strip() for n in os.environ.get("GITXP_ENV_ALLOW", "").split(",") if n.strip()
        )
        set_env, refused = _replayable(recorded, redacted, extra)
        return Plan(
            run_id=record.id,
            name=record.name,
            code_commit=code,
            argv=argv,
            cwd=cwd,
            params=params,
            set_env=set_env,
            unset_env=_to_unset(recorded, extra),
            redacted=redacted,
            refused_env=refused,
        )


def _replay_command(run_id: str, command: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The argv to run again and the params to pass, from a run's recorded command.

    A command `gitxp run` recorded is run as it was, with its params; a
    Python script that recorded itself runs under this interpreter. Raises
    NotReproducibleError when the command cannot be run again as recorded.
    """
    argv = list(command.get("argv") or [])
    if not argv or not all(isinstance(a, str) for a in argv):
        raise NotReproducibleError(run_id, "it has no recorded command")
    if command.get("redacted"):
        raise NotReproducibleError(
            run_id,
            "gitxp did not record the secret-looking arguments of its command "
            f"({_hidden(argv, command['redacted'])})",
            "run it again yourself: `gitxp checkout` gets its code, `gitxp show` its command",
        )
    source = command.get("source")
    if source == "cli":
        return argv, dict(command.get("params") or {})
    if source != "python":
        raise NotReproducibleError(run_id, f"its command source {source!r} is unknown")
    script = command.get("script")
    if not script or argv[0] != "python" or len(argv) < 2:
        if len(argv) >= 2 and argv[0] == "python" and argv[1].endswith(".py"):
            raise NotReproducibleError(
                run_id,
                f"it was recorded by {argv[1]}, a script outside the repository, "
                "so the run's code does not include it",
                "keep the script in the repository to make its runs reproducible",
            )
        raise NotReproducibleError(
            run_id, "it was recorded from an interactive session, not a script"
        )
    script_cwd = _safe_cwd(command.get("cwd"), run_id)
    rel = os.path.relpath(script, script_cwd) if script_cwd != "." else script
    return [sys.executable, rel, *argv[2:]], {}


def _to_unset(recorded: dict[Any, Any], extra: frozenset[str]) -> list[str]:
    """The allow-listed variables set here that the run did not have: unset for the replay."""
    from ..tracking.environment import allowed_variable

    return sorted(
        name
        for name in os.environ
        if allowed_variable(name, extra)
        and name not in recorded
        and name not in NOT_REPLAYED
        and not never_replayed(name)
    )


def _replayable(
    recorded: dict[Any, Any], redacted: list[str], extra: frozenset[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The recorded variables to set again, and the others with why they are not.

    The allow-list is applied again (env.json may come from anyone), and so are
    the secret rules; variables that load code are never set.
    """
    from ..tracking.environment import allowed_variable
    from ..tracking.redaction import looks_secret_variable

    replay: dict[str, str] = {}
    refused: dict[str, str] = {}
    for name, value in sorted(recorded.items(), key=lambda kv: str(kv[0])):
        if not isinstance(name, str) or not _VARIABLE_NAME.match(name):
            refused[str(name)[:80]] = "not a variable name"
        elif name in NOT_REPLAYED or name in redacted:
            continue  # describes the machine, or redacted when recorded: reported apart
        elif never_replayed(name):
            refused[name] = "loads or runs code"
        elif not isinstance(value, str) or "\0" in value:
            refused[name] = "not a text value"
        elif not allowed_variable(name, extra):
            refused[name] = "not on the allow-list"
        elif looks_secret_variable(name, value):
            refused[name] = "looks like a credential"
        else:
            replay[name] = value
    for name in refused:
        log.info("not replaying %s recorded in the run: %s", name, refused[name])
    return replay, refused


def rebase(value: str, root: str, workdir: str) -> str:
    """Point an absolute path inside the repository at the same file in the checkout.

    `gitxp run -- python /home/me/proj/train.py` must re-run the checked-out
    train.py, not today's version in the work tree.
    """
    if os.path.isabs(value):
        rel = os.path.relpath(value, root)
        if rel == "." or not rel.startswith(".."):
            return os.path.normpath(os.path.join(workdir, rel))
    return value


def _repro_name(rows: list[dict[str, Any]], name: str) -> str:
    taken = {row.get("name") for row in rows}
    base = f"{name}-repro"
    if base not in taken:
        return base
    n = 2
    while f"{base}{n}" in taken:
        n += 1
    return f"{base}{n}"


def reproduce(
    run: str,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    dry_run: bool = False,
    keep: str | os.PathLike[str] | None = None,
    stream: bool = True,
    repo: RepoArg = ".",
) -> ReproduceResult:
    """Re-run *run*'s recorded command on its exact code and compare every final metric.

    Returns a `ReproduceResult`; its `exit_status` is 0 when all metrics
    match within tolerance, 1 when some drifted (`drifted` names them), 2
    when the command failed. *keep* writes the checkout to that new or
    empty directory and leaves it there; otherwise a temporary directory
    is used and removed.

        result = gitxp.reproduce("swift-otter-42", rtol=1e-4)
        result.verdict, result.drifted
    """
    rtol = non_negative("rtol", rtol)
    atol = non_negative("atol", atol)
    if not dry_run:
        refuse_bare(repo)
    the_plan = plan(run, repo=repo)
    result = ReproduceResult(plan=the_plan, dry_run=dry_run)
    if dry_run:
        return result
    with opened(repo) as r:
        original = r.run(the_plan.run_id)
        if keep is not None:
            workdir = os.path.abspath(os.fspath(keep))
        else:
            workdir = tempfile.mkdtemp(prefix="gitxp-reproduce-")
            os.rmdir(workdir)  # materialize wants a new or empty directory
        try:
            launched = _launch_in(r, the_plan, original, workdir, stream)
        finally:
            if keep is None:
                shutil.rmtree(workdir, ignore_errors=True)
        result.kept = workdir if keep is not None else None
        result.run_id, result.run_name = launched.run_id, launched.name
        result.status, result.exit_code = launched.status, launched.exit_code
        _compare(result, original, r.run(launched.run_id), rtol, atol)
        _record_verdict(r, launched.run_id, result, rtol, atol)
        return result


def _launch_in(
    r: Repo, the_plan: Plan, original: RunRecord, workdir: str, stream: bool
) -> LaunchResult:
    """Write the plan's code commit to *workdir* and run its command there, recorded
    as a new run of the original's experiment; return what `launch` returns."""
    from ..git.checkout import materialize
    from ..tracking.options import RunOptions
    from .launch import ProcessOptions, launch_run

    name = _repro_name(r.rows(), the_plan.name)
    root = r.git.root
    materialize(r.git, the_plan.code_commit, workdir)
    run_dir = os.path.join(workdir, *the_plan.cwd.split("/"))
    os.makedirs(run_dir, exist_ok=True)
    options = RunOptions(
        experiment=original.experiment,
        name=name,
        params=the_plan.params,
        tags={"reproduces": original.id},
        notes=f"Reproduction of run {original.name} ({original.id}).",
        code_commit=the_plan.code_commit,
        extra_meta={"reproduces": original.id, "dirty": bool(original.meta.get("dirty"))},
    )
    process = ProcessOptions(
        cwd=run_dir,
        env={
            k: os.pathsep.join(rebase(p, root, workdir) for p in v.split(os.pathsep))
            for k, v in the_plan.set_env.items()
        },
        unset_env=the_plan.unset_env,
        stream=stream,
        record_cwd=the_plan.cwd,
    )
    argv = [rebase(a, root, workdir) for a in the_plan.argv]
    return launch_run(argv, options, process, repo=root)


def _changed(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """{key: [old value, new value]} for every key whose value differs, sorted by key."""
    return {
        k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
    }


def _compare(
    result: ReproduceResult, original: RunRecord, new: RunRecord, rtol: float, atol: float
) -> None:
    """Fill in *result*'s metric checks and what else differs between the two runs."""
    new_last = new.last_metrics
    for key, value in sorted(original.last_metrics.items()):
        result.checks.append(check_metric(key, value, new_last.get(key), rtol, atol))
    result.new_metrics = sorted(k for k in new_last if k not in original.last_metrics)
    result.params_changed = _changed(original.params, new.params)
    result.packages_changed = _changed(
        original.env.get("packages") or {}, new.env.get("packages") or {}
    )


def _record_verdict(
    r: Repo, run_id: str, result: ReproduceResult, rtol: float, atol: float
) -> None:
    """Write the verdict into the reproduction's run (`reproduction` in run.json and a tag)."""
    from ..store.edit import RunState, edit_run

    verdict = {
        "original": result.plan.run_id,
        "verdict": result.verdict,
        "drifted": result.drifted,
        "rtol": rtol,
        "atol": atol,
    }

    def record_verdict(state: RunState) -> None:
        state.meta["reproduction"] = verdict
        state.meta.setdefault("tags", {})["reproduction"] = result.verdict

    try:
        ref, tip = r.resolve(run_id)
        edit_run(r.git, ref, tip, f"reproduction {result.verdict}", record_verdict)
    except GitxpError as exc:  # the verdict is still returned and printed
        log.warning("gitxp: could not record the verdict: %s", exc)
