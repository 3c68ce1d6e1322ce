"""Passing the signals sent to `gitxp run` on to the command it supervises.

At a terminal the command shares gitxp's foreground process group, so
Ctrl-C and Ctrl-Z reach it exactly once; without one (CI, schedulers) it
gets a process group of its own and the signals sent to gitxp are forwarded
to that group (see `Signals`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from typing import Any

FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


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


class Signals:
    """Passing the signals sent to the launcher on to CMD, and noting which came.

    Three ways to be started, three ways to pass signals on:
    - at a terminal: CMD shares our (foreground) process group, so Ctrl-C,
      Ctrl-Z and a hangup reach it straight from the terminal, exactly once;
      we only note SIGINT/SIGHUP and pass on SIGTERM, which comes from `kill`.
    - otherwise (CI, a scheduler, a pipeline): CMD gets a process group of
      its own and every signal sent to us goes to that whole group.
    - from a thread other than the main one (several runs at once): no
      handlers can be installed; CMD shares our group and gets Ctrl-C directly.
    """

    def __init__(self) -> None:
        self.main = threading.current_thread() is threading.main_thread()
        self.interactive = self.main and _interactive()
        self.own_group = self.main and not self.interactive
        self.received: list[int] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._previous: dict[int, Any] = {}

    def forward(self, signum: int, frame: Any) -> None:
        proc = self.proc
        if proc is None:  # not started yet: nothing to pass it on to
            return
        # a CMD that ignores it (SIGINT inherited ignored from a non-interactive shell) runs on:
        # its run ends as CMD does, not KILLED
        if not ignores_signal(proc.pid, signum):
            self.received.append(signum)
        if self.interactive and signum in (signal.SIGINT, signal.SIGHUP):
            return  # the terminal sent it to CMD as well
        with contextlib.suppress(OSError):
            if self.own_group:
                os.killpg(proc.pid, signum)
            else:
                proc.send_signal(signum)

    def install(self, proc: subprocess.Popen[bytes]) -> None:
        """Forward the signals sent to us to *proc* (from the main thread only)."""
        self.proc = proc
        if self.main:
            for sig_name in FORWARDED_SIGNALS:
                signum = getattr(signal, sig_name)
                self._previous[signum] = signal.signal(signum, self.forward)

    def wait(self, proc: subprocess.Popen[bytes]) -> int:
        """Wait for *proc* (CMD) to exit, forwarding signals meanwhile; its return code.
        Our own signal handlers are restored then."""
        try:
            while True:
                try:
                    return proc.wait()
                except KeyboardInterrupt:  # a SIGINT handler other than ours fired
                    self.forward(signal.SIGINT, None)
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
