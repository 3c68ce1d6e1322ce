"""`gitxp run -- CMD`: one run per command, params in, exit code and output out, signals forwarded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gitxp
from gitxp.ops.launch import launch
from gitxp.ops.pairs import parse_pairs, parse_scalar
from tests.gitutil import fsck, git, run_refs
from tests.workflows_util import GITXP, child_env, runs_json, write
from tests.workflows_util import gitxp as run_gitxp

CHILD = """
import json, sys
import gitxp
run = gitxp.active_run()
print("PARAMS " + json.dumps(run.params, sort_keys=True), flush=True)
gitxp.log_metric("acc", 0.5)
with gitxp.start_run(params={"from_script": 1}) as same:
    assert same.id == run.id
    same.log_metric("loss", 0.25, step=3)
print("to stderr", file=sys.stderr)
sys.exit(int(run.params.get("code", 0)))
"""


def test_params_are_typed_and_the_command_joins_the_one_run(repo: Path) -> None:
    write(repo / "child.py", CHILD)
    result = run_gitxp(
        repo, "run", "-e", "exp", "-n", "first", "-p", "lr=0.25", "-p", "n=3", "-p", "flag=true",
        "-p", "name=adam", "-p", "ids=[1, 2]", "-t", "team=vision", "-m", "hello",
        "--", "python", "child.py",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("PARAMS "))
    assert json.loads(line[7:]) == {
        "flag": True,
        "ids": [1, 2],
        "lr": 0.25,
        "n": 3,
        "name": "adam",
    }
    assert len(run_refs(repo)) == 1  # one run, never two
    record = gitxp.open(repo).run("first")
    assert record.status == "FINISHED"
    assert record.experiment == "exp"
    assert record.params["from_script"] == 1 and record.params["lr"] == 0.25
    assert record.last_metrics == {"acc": 0.5, "loss": 0.25}
    assert record.tags == {"team": "vision"}
    assert record.notes == "hello"
    assert record.meta["exit_code"] == 0
    assert record.meta["wall_time"] > 0
    assert record.meta["command"]["argv"] == ["python", "child.py"]
    assert record.meta["command"]["cwd"] == "."
    assert record.meta["command"]["source"] == "cli"
    assert "PARAMS" in record.output and "to stderr" in record.output
    assert "gitxp: run first FINISHED" in result.stderr
    fsck(repo)


def test_exit_code_is_propagated_and_the_run_failed(repo: Path) -> None:
    write(repo / "child.py", CHILD)
    result = run_gitxp(repo, "run", "-n", "bad", "-p", "code=3", "--", "python", "child.py")
    assert result.returncode == 3
    record = gitxp.open(repo).run("bad")
    assert record.status == "FAILED"
    assert record.meta["exit_code"] == 3
    assert "exited with code 3" in record.meta["error"]
    assert record.last_metrics["acc"] == 0.5  # what the command logged is kept


def test_output_is_streamed_and_recorded_from_a_subdirectory(repo: Path) -> None:
    write(repo / "sub" / "say.sh", "echo out-line\necho err-line >&2\n")
    result = run_gitxp(repo / "sub", "run", "-n", "shell", "--", "sh", "say.sh")
    assert result.returncode == 0, result.stderr
    assert "out-line" in result.stdout and "err-line" in result.stderr
    record = gitxp.open(repo).run("shell")
    assert record.meta["command"]["cwd"] == "sub"
    assert record.output.splitlines() == ["out-line", "err-line"] or set(
        record.output.splitlines()
    ) == {"out-line", "err-line"}
    shown = git(repo, "show", f"{record.ref}:output.log")
    assert "out-line" in shown


def test_quiet_records_output_without_echoing_it(repo: Path) -> None:
    result = run_gitxp(repo, "run", "-q", "-n", "hush", "--", "echo", "secretly-recorded")
    assert result.returncode == 0
    assert "secretly-recorded" not in result.stdout
    assert "secretly-recorded" in gitxp.open(repo).run("hush").output


def test_output_is_capped_to_its_tail(repo: Path) -> None:
    script = write(repo / "loud.py", "for i in range(20000): print(f'line {i:05d}')\n")
    result = launch(
        [sys.executable, str(script)], name="loud", repo=repo, stream=False, output_cap=10_000
    )
    assert result.status == "FINISHED"
    assert result.output_bytes == 20000 * 11
    record = gitxp.open(repo).run("loud")
    stored = record.output
    assert len(stored.encode()) <= 10_000 + 200
    assert stored.startswith("[gitxp: output truncated")
    assert stored.rstrip().endswith("line 19999")
    assert record.meta["output"]["truncated"] is True


def test_unknown_command_exits_127_without_a_run(repo: Path) -> None:
    result = run_gitxp(repo, "run", "--", "no-such-program-xyz", "--flag")
    assert result.returncode == 127
    assert result.stderr.startswith("error: cannot run 'no-such-program-xyz'")
    assert "Traceback" not in result.stderr
    assert run_refs(repo) == []


def test_bad_param_is_a_usage_error(repo: Path) -> None:
    result = run_gitxp(repo, "run", "-p", "novalue", "--", "true")
    assert result.returncode == 2
    assert "KEY=VALUE" in result.stderr
    assert run_refs(repo) == []


SLEEPER = """
import os, signal, sys, time
import gitxp
gitxp.log_metric("progress", 1.0)
gitxp.active_run().checkpoint()
def on_term(signum, frame):
    open("got-" + signal.Signals(signum).name, "w").close()
    sys.exit(143)
signal.signal(signal.SIGTERM, on_term)
open("ready", "w").close()
time.sleep(60)
"""


def _interruptible() -> None:
    """Give a started process the default Ctrl-C disposition.

    A suite run as a background job (`pytest &` from a script) inherits
    SIGINT ignored, as POSIX asks of background jobs, and so would every
    process it starts: these tests are about processes a user can interrupt.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_and_wait(repo: Path, name: str) -> subprocess.Popen[str]:
    write(repo / "sleeper.py", SLEEPER)
    proc = subprocess.Popen(
        [*GITXP, "run", "-n", name, "--", "python", "sleeper.py"],
        cwd=repo,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_interruptible,
    )
    deadline = time.monotonic() + 60
    while not (repo / "ready").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize(
    ("sig", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["TERM", "INT"]
)
def test_signals_are_forwarded_and_the_run_is_killed(
    repo: Path, sig: signal.Signals, exit_code: int
) -> None:
    proc = _start_and_wait(repo, f"stopped-{sig.name}")
    assert gitxp.open(repo).run(f"stopped-{sig.name}").status == "RUNNING"
    proc.send_signal(sig)  # to gitxp only, not to the command's process group
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == exit_code, err
    if sig == signal.SIGTERM:
        assert (repo / "got-SIGTERM").exists()  # the command itself received it
    record = gitxp.open(repo).run(f"stopped-{sig.name}")
    assert record.status == "KILLED"
    assert record.meta["exit_code"] == exit_code
    assert record.last_metrics == {"progress": 1.0}
    assert "KILLED" in err
    fsck(repo)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("-7", -7),
        ("0.25", 0.25),
        ("1e-3", 0.001),
        (".5", 0.5),
        ("true", True),
        ("False", False),
        ("null", None),
        ("~", None),
        ("adam", "adam"),
        ('"3"', "3"),
        ("'0.5'", "0.5"),
        ("[1, 2.5]", [1, 2.5]),
        ('{"a": 1}', {"a": 1}),
        ("", ""),
        ("1.2.3", "1.2.3"),
        ("a=b", "a=b"),
    ],
)
def test_param_values_are_yaml_scalars(text: str, value: object) -> None:
    parsed = parse_scalar(text)
    assert parsed == value and type(parsed) is type(value)


def test_scalar_parsing_agrees_with_pyyaml_where_yaml_is_unambiguous() -> None:
    yaml = pytest.importorskip("yaml")
    for text in ["3", "-7", "0.25", "1.5e+3", "true", "false", "null", "~", "adam", "x y"]:
        assert parse_scalar(text) == yaml.safe_load(text), text


def test_pairs_reject_missing_equals_and_duplicates() -> None:
    assert parse_pairs(["a=1", "b = x"], "param") == {"a": 1, "b": " x"}
    with pytest.raises(gitxp.UsageError, match="KEY=VALUE"):
        parse_pairs(["a"], "param")
    with pytest.raises(gitxp.UsageError, match="twice"):
        parse_pairs(["a=1", "a=2"], "param")


def test_launch_is_the_python_twin(repo: Path) -> None:
    result = gitxp.launch(
        [sys.executable, "-c", "import gitxp; gitxp.log_metric('x', 2)"],
        params={"k": 1},
        repo=repo,
        stream=False,
    )
    assert (result.status, result.exit_code) == ("FINISHED", 0)
    record = gitxp.open(repo).run(result.run_id)
    assert record.last_metrics == {"x": 2.0} and record.params == {"k": 1}
    assert os.environ.get("GITXP_RUN_ID") is None  # the caller's environment is untouched


def test_a_supervised_run_stays_running_without_heartbeats() -> None:
    """A command that never logs makes no checkpoints; its live `gitxp run` vouches for it."""
    import socket

    from gitxp.format.status import effective_status

    meta = {
        "status": "RUNNING",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "heartbeat_time": 0,
        "checkpoint_seconds": 30,
    }
    assert effective_status(meta) == "CRASHED"  # stale heartbeat, not supervised
    assert effective_status({**meta, "supervised": True}) == "RUNNING"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout
    assert effective_status({**meta, "supervised": True, "pid": int(dead)}) == "CRASHED"


ONCE = """
import time, gitxp
gitxp.log_metric("x", 1)
try:
    print("ready", flush=True)
    time.sleep(30)
except KeyboardInterrupt:
    with open("interrupts", "a") as f:
        f.write("int\\n")
    time.sleep(0.5)  # a second Ctrl-C from a careless forwarder would land here
    with open("interrupts", "a") as f:
        f.write("clean\\n")
"""


def test_ctrl_c_at_a_terminal_reaches_the_command_once(repo: Path) -> None:
    import pty
    import select

    write(repo / "once.py", ONCE)
    env = child_env()
    pid, fd = pty.fork()
    if pid == 0:  # the child: become `gitxp run` on the pseudo-terminal
        _interruptible()
        os.chdir(repo)
        os.execve(sys.executable, [*GITXP, "run", "-n", "tty", "--", "python", "once.py"], env)
    seen = b""
    deadline = time.monotonic() + 60
    while b"ready" not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            seen += os.read(fd, 4096)
    assert b"ready" in seen, seen
    os.write(fd, b"\x03")  # Ctrl-C typed at the terminal
    while True:
        try:
            if select.select([fd], [], [], 0.2)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                seen += chunk
        except OSError:
            break
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert (repo / "interrupts").exists(), seen.decode(errors="replace")
    assert (repo / "interrupts").read_text() == "int\nclean\n"
    assert os.waitstatus_to_exitcode(status) == 0  # the command handled it and exited 0
    record = gitxp.open(repo).run("tty")
    assert record.status == "KILLED" and record.meta["signal"] == "SIGINT"


def test_run_in_a_repository_without_commits(empty_repo: Path) -> None:
    write(empty_repo / "t.py", "import gitxp\ngitxp.log_metric('a', 1)\n")
    result = run_gitxp(empty_repo, "run", "-n", "first", "--", "python", "t.py")
    assert result.returncode == 0, result.stderr
    record = gitxp.open(empty_repo).run("first")
    assert record.status == "FINISHED" and record.last_metrics == {"a": 1.0}
    assert git(empty_repo, "show", f"{record.code_commit}:t.py").startswith("import gitxp")
    assert git(empty_repo, "status", "--porcelain") == "?? t.py\n"  # nothing of ours was staged
    fsck(empty_repo)


def test_outside_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    result = run_gitxp(tmp_path, "run", "--", "true")
    assert result.returncode == 1
    assert result.stderr.startswith("error: not a git repository")


def test_parallel_runs_in_a_new_repository(repo: Path) -> None:
    """A sweep started with `&`: the first run refs, reflogs and shared blobs are created at once."""
    procs = [
        subprocess.Popen(
            [
                *GITXP,
                "run",
                "-q",
                "-n",
                f"p{i}",
                "-p",
                f"i={i}",
                "--",
                "python",
                "-c",
                "import gitxp; gitxp.log_metric('i', gitxp.active_run().params['i'])",
            ],
            cwd=repo,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    rows = {r["name"]: r for r in runs_json(repo)}
    assert {n: r["metrics"]["i"] for n, r in rows.items()} == {f"p{i}": float(i) for i in range(4)}
    assert {r["status"] for r in rows.values()} == {"FINISHED"}
    fsck(repo)


def test_no_capture_stores_no_output(repo: Path) -> None:
    result = run_gitxp(repo, "run", "-n", "secret", "--no-capture", "--", "echo", "s3cr3t")
    assert result.returncode == 0 and "s3cr3t" in result.stdout  # still shown
    record = gitxp.open(repo).run("secret")
    assert record.output == "" and record.meta["output"]["bytes"] == 7
    assert "output.log" not in git(repo, "ls-tree", "--name-only", record.ref)
