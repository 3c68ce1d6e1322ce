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
from dataclasses import asdict, dataclass
from typing import IO, Any

from ..errors import CommandNotFoundError, InvalidValueError, UsageError
from ..format import storage
from ..format.values import check_key, normalize_param

OUTPUT_CAP = 1024 * 1024  # bytes of output kept in the run (the tail)
FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
_LINE_CAP = 65536  # a line longer than this is stored in pieces
_READER_GRACE_SECONDS = 2.0  # output still arriving after CMD exited (its children)


@dataclass(frozen=True)
class LaunchResult:
    """What `gitxp.launch()` returns: the run it recorded and how the command ended."""

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


def _interactive() -> bool:
    """True when we own the terminal's foreground (CMD can then take it over)."""
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def ignores_signal(pid: int, signum: int) -> bool:
    """True when process *pid* ignores *signum* (SIG_IGN), so sending it changes nothing.

    Read from /proc/<pid>/status (Linux); elsewhere, or if the process is
    gone, False: the signal is then taken to have reached it.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("SigIgn:"):
                    return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


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
    from ..git.repository import GitRepo
    from ..tracking.fluent import ENV_RUN_ID, ENV_RUN_REPO
    from ..tracking.run import Run

    items = None if isinstance(cmd, (str, bytes)) else list(cmd)  # any iterable, read once
    if items is None or not all(isinstance(a, (str, os.PathLike)) for a in items):
        raise InvalidValueError(
            "command", f"{cmd!r}: give the program and its arguments as a list of strings"
        )
    argv = [os.fspath(a) for a in items]
    if not argv:
        raise UsageError("no command given; e.g. gitxp run -- python train.py")
    git = GitRepo.discover(repo)
    if git.bare:
        git.close()
        git.require_work_tree("gitxp run")
    run_dir = os.path.abspath(os.fspath(cwd)) if cwd is not None else os.getcwd()
    child_env = dict(os.environ)
    for name_ in unset_env:
        child_env.pop(name_, None)
    if env:
        child_env.update(env)
    try:
        _resolve_program(argv, run_dir, child_env.get("PATH"))
        from ..tracking.system_metrics import resolve as resolve_system_metrics

        # sampled here, for CMD's whole process tree, whatever language CMD is in
        sm_interval = resolve_system_metrics(system_metrics, system_metrics_seconds)
        if record_cwd is None:
            rel = os.path.relpath(run_dir, git.root)
            record_cwd = "." if rel.startswith("..") else rel.replace(os.sep, "/")
        clean = {check_key("param", k): normalize_param(k, v) for k, v in (params or {}).items()}
        from ..tracking.redaction import command_record

        command = command_record(argv, cwd=record_cwd, source="cli", params=clean)
        run = Run(
            git,
            experiment=experiment,
            name=name,
            params=clean,
            tags=tags,
            notes=notes,
            command=command,
            extra_meta={"supervised": True, **(extra_meta or {})},
            code_commit=code_commit,
            system_metrics=False,
        )
    except BaseException:
        git.close()
        raise
    # From here on CMD owns the ref until it exits.
    run._pause_checkpoints()
    if on_start is not None:
        on_start(run)
    child_env[ENV_RUN_ID] = run.id
    child_env[ENV_RUN_REPO] = git.root
    child_env.setdefault("PYTHONUNBUFFERED", "1")  # stream Python output as it comes
    if sm_interval is not None:
        from ..tracking.system_metrics import ENV_ENABLE, PARENT_SAMPLES

        child_env[ENV_ENABLE] = PARENT_SAMPLES  # CMD's own gitxp must not sample twice
    from ..tracking.environment import allowed_variable
    from ..tracking.redaction import argv_secrets, environment_secrets

    # what is hidden in run.json and env.json is hidden in output.log too, wherever it appears
    known = [*argv_secrets(argv), *environment_secrets(child_env, allowed_variable)]
    return _supervise(run, argv, run_dir, child_env, stream, output_cap, sm_interval, known)


def _supervise(
    run: Any,
    argv: list[str],
    cwd: str,
    env: dict[str, str],
    stream: bool,
    cap: int,
    sm_interval: float | None = None,
    known: Sequence[str] = (),
) -> LaunchResult:
    tail = _Tail(cap)
    # Three ways to be started, three ways to pass signals on:
    # - at a terminal: CMD shares our (foreground) process group, so Ctrl-C,
    #   Ctrl-Z and a hangup reach it straight from the terminal, exactly once;
    #   we only note SIGINT/SIGHUP and pass on SIGTERM, which comes from `kill`.
    # - otherwise (CI, a scheduler, a pipeline): CMD gets a process group of
    #   its own and every signal sent to us goes to that whole group.
    # - from a thread other than the main one (several runs at once): no
    #   handlers can be installed; CMD shares our group and gets Ctrl-C directly.
    main = threading.current_thread() is threading.main_thread()
    interactive = main and _interactive()
    own_group = main and not interactive
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            process_group=0 if own_group else None,
        )
    except OSError as exc:
        run._set_meta(exit_code=127, wall_time=0.0)
        run.end("FAILED", f"could not start {argv[0]}: {exc.strerror or exc}")
        raise CommandNotFoundError(argv[0], exc.strerror or str(exc)) from None
    received: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        # a CMD that ignores it (SIGINT inherited ignored from a non-interactive shell) runs on:
        # its run ends as CMD does, not KILLED
        if not ignores_signal(proc.pid, signum):
            received.append(signum)
        if interactive and signum in (signal.SIGINT, signal.SIGHUP):
            return  # the terminal sent it to CMD as well
        with contextlib.suppress(OSError):
            if own_group:
                os.killpg(proc.pid, signum)
            else:
                proc.send_signal(signum)

    previous: dict[int, Any] = {}
    if main:
        for sig_name in FORWARDED_SIGNALS:
            signum = getattr(signal, sig_name)
            previous[signum] = signal.signal(signum, forward)
    assert proc.stdout is not None and proc.stderr is not None
    sampler = None
    if sm_interval is not None:
        from ..tracking.system_metrics import BufferedSampler

        sampler = BufferedSampler(proc.pid, run._meta["start_time"], sm_interval)
    stop_readers = threading.Event()
    readers = [
        threading.Thread(
            target=_pump,
            args=(pipe, sink if stream else None, tail, stop_readers),
            name=f"gitxp-output-{label}",
            daemon=True,
        )
        for pipe, sink, label in (
            (proc.stdout, sys.stdout, "out"),
            (proc.stderr, sys.stderr, "err"),
        )
    ]
    for reader in readers:
        reader.start()
    try:
        while True:
            try:
                returncode = proc.wait()
                break
            except KeyboardInterrupt:  # a SIGINT handler other than ours fired
                forward(signal.SIGINT, None)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    wall = time.monotonic() - started
    if sampler is not None:
        sampler.stop()
    grace_end = time.monotonic() + _READER_GRACE_SECONDS
    for reader in readers:
        reader.join(timeout=max(0.0, grace_end - time.monotonic()))
    stop_readers.set()  # CMD's children still hold the pipes: stop reading them
    for reader in readers:
        reader.join()
    for pipe in (proc.stdout, proc.stderr):
        with contextlib.suppress(OSError):
            pipe.close()

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
        error = f"{argv[0]} was stopped by {signame} (exit code {code})"
    else:
        error = f"{argv[0]} exited with code {code}"
    run._reload()
    if sampler is not None:
        sampler.replay(run)  # after the reload, which drops what this process buffered
    # a cap of 0: record no output at all
    output, secrets = tail.value(known) if cap > 0 else (b"", 0)
    if output:
        run._put_file(storage.OUTPUT_FILE, output)
    stored: dict[str, Any] = {
        "bytes": tail.total,
        "stored": len(output),
        "truncated": tail.total > cap,
    }
    if secrets:
        stored["redacted"] = secrets
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
