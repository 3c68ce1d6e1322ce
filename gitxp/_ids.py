"""Run ids and friendly default run names.

A run id is 26 lowercase Crockford base32 characters: 10 for the creation
time in milliseconds (so ids sort by time as text) and 16 for 80 random bits
(so ids made on different machines at the same millisecond do not collide).
It is a valid git ref component and is never reused.
"""

from __future__ import annotations

import os
import re
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
RUN_ID_RE = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")

_ADJECTIVES = [
    "amber",
    "azure",
    "bold",
    "brisk",
    "calm",
    "clever",
    "crisp",
    "dapper",
    "eager",
    "fair",
    "fleet",
    "gentle",
    "glad",
    "grand",
    "hardy",
    "keen",
    "lively",
    "lucid",
    "mellow",
    "nimble",
    "noble",
    "plucky",
    "proud",
    "quick",
    "quiet",
    "rapid",
    "ruby",
    "sage",
    "shiny",
    "silent",
    "sleek",
    "snowy",
    "solid",
    "spry",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "witty",
]
_NOUNS = [
    "badger",
    "bison",
    "condor",
    "cougar",
    "crane",
    "dingo",
    "eagle",
    "falcon",
    "ferret",
    "finch",
    "gecko",
    "heron",
    "ibex",
    "jackal",
    "koala",
    "lemur",
    "lynx",
    "marten",
    "mink",
    "moose",
    "newt",
    "ocelot",
    "orca",
    "otter",
    "panda",
    "puffin",
    "quail",
    "raven",
    "robin",
    "salmon",
    "seal",
    "stoat",
    "swan",
    "tapir",
    "tiger",
    "toucan",
    "walrus",
    "wombat",
    "yak",
    "zebra",
]


def _encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, rem = divmod(number, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_run_id(now_ms: int | None = None) -> str:
    """Return a new time-sortable, globally unique run id."""
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    return _encode(now_ms, 10) + _encode(int.from_bytes(os.urandom(10), "big"), 16)


def is_run_id(text: str) -> bool:
    """True when *text* has the exact shape of a full run id."""
    return bool(RUN_ID_RE.match(text))


def new_run_name() -> str:
    """Return a friendly default name such as ``swift-otter-42``."""
    rnd = int.from_bytes(os.urandom(4), "big")
    adjective = _ADJECTIVES[rnd % len(_ADJECTIVES)]
    noun = _NOUNS[(rnd // 64) % len(_NOUNS)]
    return f"{adjective}-{noun}-{(rnd // 4096) % 100}"


def host_name() -> str:
    """This machine's name, as run.json's `host` records it.

    `os.uname()` gives the same name as `socket.gethostname()` on POSIX
    without importing the socket module (~1 ms of every `gitxp run`).
    """
    uname = getattr(os, "uname", None)
    if uname is not None:
        return str(uname().nodename)
    import socket  # Windows

    return socket.gethostname()
