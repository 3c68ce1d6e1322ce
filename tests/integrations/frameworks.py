"""Helpers for the framework-integration tests (their fixture is in conftest.py)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def framework(module: str) -> ModuleType:
    """Import a training framework: skipped locally when absent, required under CI.

    The frameworks are not in the `test` extra (torch must be installed
    first, by hand, to get its CPU build); CI installs them, and there a
    missing framework is a failure, never a silent skip.
    """
    if os.environ.get("CI"):
        return importlib.import_module(module)
    return pytest.importorskip(module)


def artifact_names(record: object) -> set[str]:
    return {f["name"] for f in record.artifacts()}  # type: ignore[attr-defined]
