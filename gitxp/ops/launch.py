"""`gitxp run -- CMD`: record a run around any command, with the run exposed to the command.

The launcher creates the run (params, tags, notes, code snapshot,
environment), then starts CMD with `GITXP_RUN_ID`/`GITXP_RUN_REPO` in its
environment so that `gitxp.active_run()`, module-level logging and
`gitxp.start_run()` inside CMD join that run instead of starting another.
While CMD runs, only CMD writes to the run's ref (the launcher pauses its
own checkpoints: two writers would race on the ref's compare-and-swap).
When CMD exits the launcher re-reads the ref's tip and commits the final
commit: status (FINISHED on exit 0, FAILED otherwise, KILLED on a signal),
exit code, wall time and the tail of CMD's output.

Signals: at a terminal CMD shares gitxp's foreground process group, so
Ctrl-C and Ctrl-Z reach it exactly once, as they would without gitxp;
SIGTERM sent to gitxp is passed on. Without a terminal (CI, schedulers)
CMD gets a process group of its own and SIGINT, SIGTERM and SIGHUP sent
to gitxp are forwarded to that group. Either way the run ends KILLED.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import IO, TYPE_CHECKING, Any

from ..errors import CommandNotFoundError, InvalidValueError, UsageError
from ..format import storage
from ..tracking.options import RunOptions, options_from
from ..tracking.ranks import ZERO, detect
from .signals import Signals as _Signals

if TYPE_CHECKING:
    from ..git.repository import GitRepo
    from ..tracking.ranks import Rank
    from ..tracking.run import Run

OUTPUT_CAP = 1024 * 1024  # bytes of output kept in the run (the tail)
_LINE_CAP = 65536  # a line longer than this is stored in pieces
_READER_GRACE_SECONDS = 2.0  # output still arriving after CMD exited (its children)
# the keywords of `launch` that are not run settings (`RunOptions`) but CMD's
_NOT_RUN_OPTIONS = frozenset(
    ["cmd", "repo", "cwd", "env", "unset_env", "stream", "output_cap", "on_start", "record_cwd"]
)


@dataclass(frozen=True)
class LaunchResult:
    """What `gitxp.launch()` returns: the run it recorded and how the command ended.

    *run_id* and *name* are "" on a rank of a distributed job that does not
    record (`srun gitxp run ...`: only global rank 0 records by default).
    """

    run_id: str
    name: str
    experiment: str
    status: str
    exit_code: int
    wall_time: float
    output_bytes: int
    signal: str | None = None
    output_redacted: int = 0  # secret-looking strings replaced in the stored output.log

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Tail:
    """The last *cap* bytes of a stream of chunks, and how many bytes went by."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.total = 0
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._lock = threading.Lock()

    def add(self, data: bytes) -> None:
        with self._lock:
            self.total += len(data)
            if self.cap <= 0:
                return
            self._chunks.append(data)
            self._size += len(data)
            while len(self._chunks) > 1 and self._size - len(self._chunks[0]) >= self.cap:
                self._size -= len(self._chunks.popleft())

    def value(self, known: Sequence[str] = ()) -> tuple[bytes, int]:
        """What to store: the tail from a whole line on, secret-looking text and every
        *known* secret redacted (see `redaction.redact_output`), after a note of what
        was cut; and how many strings were redacted."""
        from ..tracking.redaction import redact_output

        with self._lock:
            data = b"".join(self._chunks)
        if len(data) > self.cap:
            data = data[-self.cap :]
            cut = data.find(b"\n")
            if 0 <= cut < 4096:
                data = data[cut + 1 :]  # start the stored tail on a whole line
        dropped = self.total - len(data)
        data, secrets = redact_output(data, cut=dropped > 0, known=known)
        if dropped:
            note = f"[gitxp: output truncated, the first {dropped:,} bytes are not stored]\n"
            data = note.encode() + data
        return data, secrets


def _pump(source: IO[bytes], sink: IO[Any] | None, tail: _Tail, stop: threading.Event) -> None:
    """Copy *source* to *sink* as data arrives, keeping the tail, until EOF or *stop*.

    A child of CMD may keep the pipe open long after CMD exits: `launch`
    sets *stop* after its grace period and joins the reader, so no reader
    outlives it (a thread still running at interpreter teardown can abort
    the process once pyarrow is loaded).
    """
    import select

    from ..tracking.checkpointer import block_async_signals

    block_async_signals()  # signals for us are the main thread's to handle and forward
    fd = source.fileno()
    out_buffer = getattr(sink, "buffer", None) if sink is not None else None
    pending = b""  # this stream's unfinished line: stdout and stderr never split each other's
    while not stop.is_set():
        try:
            if not select.select([fd], [], [], 0.05)[0]:
                continue
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        pending += data
        end = max(pending.rfind(b"\n"), pending.rfind(b"\r")) + 1
        if end or len(pending) > _LINE_CAP:
            end = end or len(pending)
            tail.add(pending[:end])
            pending = pending[end:]
        if sink is None:
            continue
        try:
            if out_buffer is not None:
                out_buffer.write(data)
                out_buffer.flush()
            else:
                sink.write(data.decode("utf-8", "replace"))
                sink.flush()
        except (OSError, ValueError):
            sink = None  # our own stdout went away (closed pipe): keep recording
    if pending:
        tail.add(pending)


def _resolve_program(cmd: Sequence[str], cwd: str, path: str | None) -> None:
    program = cmd[0]
    if os.sep in program:
        full = program if os.path.isabs(program) else os.path.join(cwd, program)
        if not os.path.exists(full):
            raise CommandNotFoundError(program, f"{full} does not exist")
        if not os.access(full, os.X_OK) or os.path.isdir(full):
            raise CommandNotFoundError(program, f"{full} is not executable", exit_code=126)
    elif shutil.which(program, path=path) is None:
        raise CommandNotFoundError(program, "not found on PATH")


def exit_code_of(returncode: int) -> int:
    """The shell's exit status for a child's return code (a signal N becomes 128+N)."""
    return 128 - returncode if returncode < 0 else returncode


def status_of(returncode: int, signalled: bool) -> str:
    """FINISHED on 0; KILLED on a signal (forwarded or exit 130/137/143); FAILED otherwise."""
    if returncode == 0 and not signalled:
        return "FINISHED"
    if signalled or returncode < 0 or returncode in (130, 137, 143):
        return "KILLED"
    return "FAILED"


@dataclass(frozen=True)
class ProcessOptions:
    """How `launch` runs CMD: where, in which environment, and what becomes of its output.

    *cwd*: where CMD runs (default: the current directory); *record_cwd*: the
    directory the run records (default: *cwd* relative to the repository).
    *env* adds or overrides variables, *unset_env* removes some. With
    *stream* CMD's output goes to this process's stdout/stderr as it comes;
    its last *output_cap* bytes are stored in the run (0: none).
    """

    cwd: str | os.PathLike[str] | None = None
    env: Mapping[str, str] | None = None
    unset_env: Sequence[str] = ()
    stream: bool = True
    output_cap: int = OUTPUT_CAP
    record_cwd: str | None = None


def launch(
    cmd: Sequence[str],
    experiment: str | None = None,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    notes: str | None = None,
    *,
    repo: str | os.PathLike[str] = ".",
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    unset_env: Sequence[str] = (),
    stream: bool = True,
    output_cap: int = OUTPUT_CAP,
    on_start: Callable[[Any], None] | None = None,
    code_commit: str | None = None,
    record_cwd: str | None = None,
    extra_meta: Mapping[str, Any] | None = None,
    system_metrics: bool | None = None,
    system_metrics_seconds: float | None = None,
) -> LaunchResult:
    """Run *cmd* as a recorded gitxp run; return how it went (never raises on CMD failure).

    *params* are the run's params, visible in CMD as `gitxp.active_run().params`.
    *cwd* is where CMD runs (default: the current directory, inside the
    repository at or above *repo*). *env* adds or overrides environment
    variables for CMD, *unset_env* removes some. With *stream* CMD's output goes to this process's
    stdout/stderr as it comes; either way its last *output_cap* bytes are
    stored in the run as `output.log` (0: none), secret-looking text redacted
    (`result.output_redacted` counts it). *on_start* is called with the new
    `Run` before CMD starts. With *system_metrics* (default:
    `$GITXP_SYSTEM_METRICS`) CMD's process tree and the machine are sampled
    into `system/...` series (see gitxp/system_metrics.py).

        result = gitxp.launch(["python", "train.py"], params={"lr": 0.1})
        result.status, result.exit_code
    """
    options = options_from(locals(), besides=_NOT_RUN_OPTIONS)  # first: locals() are the keywords
    process = ProcessOptions(cwd, env, unset_env, stream, output_cap, record_cwd)
    return launch_run(cmd, options, process, repo=repo, on_start=on_start)


def launch_run(
    cmd: Sequence[str],
    options: RunOptions,
    process: ProcessOptions | None = None,
    *,
    repo: str | os.PathLike[str] = ".",
    on_start: Callable[[Any], None] | None = None,
) -> LaunchResult:
    """`launch` with its settings as objects: the run's *options*, CMD's *process*."""
    from ..git.repository import GitRepo

    process = ProcessOptions() if process is None else process
    argv = _argv(cmd)
    git = GitRepo.discover(repo)
    if git.bare:
        git.close()
        git.require_work_tree("gitxp run")
    run_dir = os.path.abspath(os.fspath(process.cwd)) if process.cwd is not None else os.getcwd()
    child_env = dict(os.environ)
    for name in process.unset_env:
        child_env.pop(name, None)
    child_env.update(process.env or {})
    try:
        _resolve_program(argv, run_dir, child_env.get("PATH"))
        rank = detect()  # a rank itself (`srun gitxp run ...`): rank 0's gitxp records
        recorded = rank is None or rank.is_zero or options.ranks != ZERO
        if recorded:
            # sampled here, for CMD's whole process tree, whatever language CMD is in
            sampling = options.sampling_interval()
            run = _start_run(git, argv, options, run_dir, process.record_cwd, rank)
    except BaseException:
        git.close()
        raise
    if not recorded:
        git.close()
        return _run_unrecorded(argv, run_dir, child_env, options, process.stream)
    # From here on CMD owns the ref until it exits.
    run._pause_checkpoints()
    if on_start is not None:
        on_start(run)
    known = _child_environment(child_env, run.id, git.root, argv, sampling)
    if rank is not None:  # CMD is this rank's: it joins this run even with GITXP_RANKS=all
        from ..tracking.fluent import ENV_RUN_RANK

        child_env[ENV_RUN_RANK] = str(rank.rank)
    child = _Child(argv, run_dir, child_env, process.stream)
    return _supervise(run, child, process.output_cap, sampling, known)


def _argv(cmd: Sequence[str]) -> list[str]:
    """*cmd* as a list of strings (any iterable of str or paths, read once), or raise."""
    items = None if isinstance(cmd, (str, bytes)) else list(cmd)
    if items is None or not all(isinstance(a, (str, os.PathLike)) for a in items):
        raise InvalidValueError(
            "command", f"{cmd!r}: give the program and its arguments as a list of strings"
        )
    argv = [os.fspath(a) for a in items]
    if not argv:
        raise UsageError("no command given; e.g. gitxp run -- python train.py")
    return argv


def _start_run(
    git: GitRepo,
    argv: list[str],
    options: RunOptions,
    run_dir: str,
    record_cwd: str | None,
    rank: Rank | None = None,
) -> Run:
    """The run recording CMD *argv* (run in *run_dir*), created as *options* say; with
    *rank*, this `gitxp run` is that rank of a distributed job."""
    from ..tracking.redaction import command_record
    from ..tracking.run import Run

    if record_cwd is None:
        rel = os.path.relpath(run_dir, git.root)
        record_cwd = "." if rel.startswith("..") else rel.replace(os.sep, "/")
    params = dict(options.params or {})
    command = command_record(argv, cwd=record_cwd, source="cli", params=params)
    extra = {"supervised": True, **(options.extra_meta or {})}
    # The launcher samples CMD's process tree itself (BufferedSampler), not the run. The
    # first commit is made at once: CMD joins the run through its ref as soon as it starts
    # (`_pause_checkpoints`), so a start delay would only pin the snapshot under
    # refs/gitxp/pending/ for a few milliseconds, and unpinning it is a locked ref deletion
    # (~2 ms of every `gitxp run` of a dirty work tree).
    options = replace(
        options, command=command, extra_meta=extra, system_metrics=False, start_delay=0.0
    )
    if rank is not None and options.ranks != ZERO:  # `srun gitxp run ...` with GITXP_RANKS=all
        from ..tracking.rank_groups import group_id, start, tagged

        return start(git, tagged(options, rank, group_id()), rank, None)
    return Run(git, options)


def _run_unrecorded(
    argv: list[str], cwd: str, env: dict[str, str], options: RunOptions, stream: bool
) -> LaunchResult:
    """CMD on a rank of a distributed job that does not record: run as it would be without
    gitxp (its output straight through, signals passed on); no run, so `run_id` is ""."""
    signals = _Signals()
    sink = None if stream else subprocess.DEVNULL
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=sink,
            stderr=sink,
            process_group=0 if signals.own_group else None,
        )
    except OSError as exc:
        raise CommandNotFoundError(argv[0], exc.strerror or str(exc)) from None
    signals.install(proc)
    returncode = signals.wait(proc)
    status, code, signame, _ = _outcome(argv[0], returncode, signals.received)
    experiment = options.experiment or os.environ.get("GITXP_EXPERIMENT") or "default"
    return LaunchResult("", "", experiment, status, code, time.monotonic() - started, 0, signame)


def _child_environment(
    env: dict[str, str], run_id: str, root: str, argv: list[str], sampling: float | None
) -> list[str]:
    """Point CMD's environment *env* at the run *run_id* in the repository at *root*; return
    the secrets CMD's output must not show."""
    from ..tracking.environment import allowed_variable
    from ..tracking.fluent import ENV_RUN_ID, ENV_RUN_REPO
    from ..tracking.redaction import argv_secrets, environment_secrets

    env[ENV_RUN_ID] = run_id
    env[ENV_RUN_REPO] = root
    env.setdefault("PYTHONUNBUFFERED", "1")  # stream Python output as it comes
    if sampling is not None:
        from ..tracking.system_metrics import ENV_ENABLE, PARENT_SAMPLES

        env[ENV_ENABLE] = PARENT_SAMPLES  # CMD's own gitxp must not sample twice
    # what is hidden in run.json and env.json is hidden in output.log too, wherever it appears
    return [*argv_secrets(argv), *environment_secrets(env, allowed_variable)]


@dataclass
class _Child:
    """CMD as it is started: its argv, directory, environment, and whether its output is shown."""

    argv: list[str]
    cwd: str
    env: dict[str, str]
    stream: bool


def _popen(run: Run, child: _Child, own_group: bool) -> subprocess.Popen[bytes]:
    """Start CMD with its output piped to us; a CMD that cannot start ends the run FAILED."""
    try:
        return subprocess.Popen(
            child.argv,
            cwd=child.cwd,
            env=child.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            process_group=0 if own_group else None,
        )
    except OSError as exc:
        run._set_meta(exit_code=127, wall_time=0.0)
        run.end("FAILED", f"could not start {child.argv[0]}: {exc.strerror or exc}")
        raise CommandNotFoundError(child.argv[0], exc.strerror or str(exc)) from None


class _Readers:
    """The two threads copying CMD's stdout and stderr (to ours, with *stream*) and the tail."""

    def __init__(self, proc: subprocess.Popen[bytes], stream: bool, tail: _Tail) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.pipes = (proc.stdout, proc.stderr)
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(
                target=_pump,
                args=(pipe, sink if stream else None, tail, self.stop),
                name=f"gitxp-output-{label}",
                daemon=True,
            )
            for pipe, sink, label in (
                (proc.stdout, sys.stdout, "out"),
                (proc.stderr, sys.stderr, "err"),
            )
        ]
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        """Read what CMD's children still write for a grace period, then stop and close."""
        grace_end = time.monotonic() + _READER_GRACE_SECONDS
        for thread in self.threads:
            thread.join(timeout=max(0.0, grace_end - time.monotonic()))
        self.stop.set()  # CMD's children still hold the pipes: stop reading them
        for thread in self.threads:
            thread.join()
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.close()


def _supervise(
    run: Run,
    child: _Child,
    cap: int,
    sampling: float | None = None,
    known: Sequence[str] = (),
) -> LaunchResult:
    """Run CMD to its end, passing signals on and keeping its output, then end *run* as CMD did."""
    signals = _Signals()
    tail = _Tail(cap)
    started = time.monotonic()
    proc = _popen(run, child, signals.own_group)
    signals.install(proc)
    sampler = None
    if sampling is not None:
        from ..tracking.system_metrics import BufferedSampler

        sampler = BufferedSampler(proc.pid, run._meta["start_time"], sampling)
    readers = _Readers(proc, child.stream, tail)
    returncode = signals.wait(proc)
    wall = time.monotonic() - started
    if sampler is not None:
        sampler.stop()
    readers.finish()
    status, code, signame, error = _outcome(child.argv[0], returncode, signals.received)
    run._reload()
    if sampler is not None:
        sampler.replay(run)  # after the reload, which drops what this process buffered
    stored, secrets = _store_output(run, tail, cap, known)
    run._set_meta(exit_code=code, wall_time=round(wall, 3), signal=signame, output=stored)
    run.end(status, error)
    return LaunchResult(
        run_id=run.id,
        name=run.name,
        experiment=run.experiment,
        status=status,
        exit_code=code,
        wall_time=wall,
        output_bytes=tail.total,
        signal=signame,
        output_redacted=secrets,
    )


def _outcome(
    program: str, returncode: int, received: list[int]
) -> tuple[str, int, str | None, str | None]:
    """How CMD ended: (status, exit code, the signal's name, the run's error text)."""
    signame = None
    if received:
        signame = signal.Signals(received[0]).name
    elif returncode < 0:
        signame = signal.Signals(-returncode).name
    status = status_of(returncode, bool(received))
    code = exit_code_of(returncode)
    if status == "FINISHED":
        error = None
    elif signame:
        error = f"{program} was stopped by {signame} (exit code {code})"
    else:
        error = f"{program} exited with code {code}"
    return status, code, signame, error


def _store_output(
    run: Run, tail: _Tail, cap: int, known: Sequence[str]
) -> tuple[dict[str, Any], int]:
    """Keep the tail of CMD's output in the run as output.log; what run.json says of it
    (`output`), and how many secrets were redacted."""
    # a cap of 0: record no output at all
    output, secrets = tail.value(known) if cap > 0 else (b"", 0)
    if output:
        run._writer.put_file(storage.OUTPUT_FILE, output)
    stored: dict[str, Any] = {
        "bytes": tail.total,
        "stored": len(output),
        "truncated": tail.total > cap,
    }
    if secrets:
        stored["redacted"] = secrets
    return stored, secrets
