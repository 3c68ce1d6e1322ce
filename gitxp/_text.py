"""Wording helpers for the messages people read."""

from __future__ import annotations


def count(n: int, noun: str) -> str:
    """*n* and *noun*, plural unless *n* is 1: '1 run', '2 runs', '0 files'."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"
