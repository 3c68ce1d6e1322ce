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
from gitxp.launcher import launch
from gitxp.pairs import parse_pairs, parse_scalar
from tests.gitutil import fsck, git, run_refs
from tests.workflows_util import GITXP, child_env, write
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


def _start_and_wait(repo: Path, name: str) -> subprocess.Popen[str]:
    write(repo / "sleeper.py", SLEEPER)
    proc = subprocess.Popen(
        [*GITXP, "run", "-n", name, "--", "python", "sleeper.py"],
        cwd=repo,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
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
