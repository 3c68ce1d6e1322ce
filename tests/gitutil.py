"""Helpers for driving the real git CLI from tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada Tester",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Tester",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path | str, *args: str, check: bool = True, input: str | None = None) -> str:
    """Run the real git CLI in *repo* and return its stdout."""
    result = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        input=input,
        env={**os.environ, **GIT_ENV},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def fsck(repo: Path | str) -> None:
    """Assert `git fsck --strict` finds nothing wrong."""
    result = subprocess.run(
        ["git", "fsck", "--strict", "--no-progress"], cwd=repo, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stderr.lower() and "warning" not in result.stderr.lower(), (
        result.stderr
    )


def run_refs(repo: Path | str) -> list[str]:
    out = git(repo, "for-each-ref", "--format=%(refname)", "refs/gitxp/runs/")
    return out.split()
