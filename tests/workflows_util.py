"""Helpers for the workflow tests: running the real `gitxp` CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

GITXP = [sys.executable, "-m", "gitxp.cli.main"]


def child_env(**extra: str) -> dict[str, str]:
    """The test's environment with this interpreter's bin dir first on PATH (so `python` is ours)."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def gitxp(
    cwd: Path | str, *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `gitxp ARGS` in *cwd* as a separate process and return the finished process."""
    return subprocess.run(
        [*GITXP, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=input,
        env=env or child_env(),
        timeout=120,
    )


def stderr_on_a_terminal(
    argv: list[str], cwd: Path | str
) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """Run *argv* with its stderr on a pseudo-terminal (where progress and hints show);
    return the finished process (stdout captured) and what reached the terminal."""
    import pty

    master, slave = pty.openpty()
    result = subprocess.run(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, timeout=60
    )
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    return result, err.decode()


def runs_json(cwd: Path | str) -> list[dict[str, Any]]:
    result = gitxp(cwd, "log", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
