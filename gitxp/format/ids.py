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
# A name that `gitxp show NAME` would take as an id prefix: 4-26 id characters, any case,
# starting with 0 (the top 5 bits of a 50-bit ms timestamp: 0 for every id until AD 3084)
ID_LIKE_NAME_RE = re.compile(r"0[0-9a-hjkmnp-tv-z]{3,25}", re.IGNORECASE)
# Characters a POSIX shell takes literally, so a name can be pasted into a command unquoted
NAME_RE = re.compile(r"[\w@%+=:,./-]+")

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
    return bool(RUN_ID_RE.fullmatch(text))


def name_problem(name: object) -> str | None:
    """Why *name* cannot name a run (None: it can). The rules are in docs/format.md, Names."""
    if not isinstance(name, str) or not name.strip():
        return "must be a non-empty string"
    text = name.strip()
    if ID_LIKE_NAME_RE.fullmatch(text):
        return "looks like a run id prefix, so `gitxp show` would look it up as an id"
    if text.startswith("-"):
        return "starts with '-', so commands would read it as an option"
    if not NAME_RE.fullmatch(text):
        return (
            "has characters a shell would need quoted; use letters, digits and _ - . , : = + @ % /"
        )
    return None


def check_run_name(name: object) -> str:
    """*name* stripped of surrounding blanks, or InvalidValueError saying what is wrong."""
    from ..errors import InvalidValueError

    problem = name_problem(name)
    if problem is not None:
        raise InvalidValueError("name", f"{name!r} {problem}")
    return str(name).strip()


def usable_run_name(name: object) -> str | None:
    """A name from another tool made valid: unsafe runs of characters become '-' (None: none left)."""
    if not isinstance(name, str):
        return None
    text = "-".join(part for part in re.split(r"[^\w@%+=:,./-]+", name) if part).lstrip("-")
    if not text:
        return None
    return f"run-{text}" if ID_LIKE_NAME_RE.fullmatch(text) else text


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
