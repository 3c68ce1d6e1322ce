"""The one background thread that makes the timed checkpoints of every live run.

Also `block_async_signals`, which gitxp's background threads call first so
that Ctrl-C and `kill` reach the main thread, and `at_interpreter_exit`,
with which they are stopped and joined before the interpreter finalises.
"""

from __future__ import annotations

import atexit
import contextlib
import heapq
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Protocol

_SYNCHRONOUS = {"SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGABRT", "SIGSYS"}


def block_async_signals() -> None:
    """Keep signals sent to the process (Ctrl-C, `kill`) off the calling background thread.

    The kernel hands a process-directed signal to any thread that does not
    block it. Python runs handlers in the main thread, but only the thread
    that received the signal is woken: if a background thread takes it, the
    main thread sleeps on (in `time.sleep`, `wait`), and Ctrl-C seems lost.
    """
    if hasattr(signal, "pthread_sigmask"):
        asynchronous = {
            s for s in signal.valid_signals() if getattr(s, "name", "") not in _SYNCHRONOUS
        }
        signal.pthread_sigmask(signal.SIG_BLOCK, asynchronous)


def at_interpreter_exit(stop: Callable[[], None]) -> None:
    """Call *stop* (which stops a gitxp thread and joins it) as the interpreter exits.

    It runs when the main thread has finished, before `atexit` handlers (which
    end the runs left open, from the main thread) and before the interpreter
    finalises. A daemon thread still working then, inside pyarrow's C++ say,
    is unwound mid-call, and the process aborts ("terminate called without an
    active exception", exit 134) after the run was committed.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:  # pragma: no cover - every CPython gitxp supports has it
        atexit.register(stop)
        return
    with contextlib.suppress(RuntimeError):  # already exiting: nothing more will start
        register(stop)


class Timed(Protocol):
    """What the checkpointer serves (a live `Run`): `_tick()` commits what is due and
    returns when it is next due (`time.monotonic()`), or None when it is done."""

    def _tick(self) -> float | None: ...


class Checkpointer:
    """The one thread that makes the timed commits of every live run of the process.

    Runs wait in a heap ordered by when they are due. One thread for all
    runs, rather than one per run, spares each run starting and joining a
    thread (~0.1 ms, a twentieth of recording a short run) and keeps a
    process that records thousands of runs at one extra thread.
    A forked child starts with an empty heap: its parent's runs are not its
    to commit (a DataLoader worker must not checkpoint the training run).
    A run is anything `Timed`.
    """

    def __init__(self) -> None:
        self._registered = False
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Timed]] = []
        self._seq = itertools.count()
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, run: Timed, due: float) -> None:
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._seq), run))
            if self._pid != os.getpid() and not self._closed:
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._loop, name="gitxp-checkpointer", daemon=True
                )
                self._thread.start()
                if not self._registered:  # once: a forked child inherits the registration
                    self._registered = True
                    at_interpreter_exit(lambda: checkpointer.close())
            self._cond.notify()

    def close(self, timeout: float = 60.0) -> None:
        """Stop the thread (after the commit it may be making) and wait for it.

        Called as the interpreter exits; runs still open are then ended by the
        main thread (`context._end_all_at_exit`), which needs no timed commit.
        """
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self) -> None:
        block_async_signals()
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                _, _, run = heapq.heappop(self._heap)
            due = run._tick()
            if due is not None:
                self.add(run, due)


checkpointer = Checkpointer()


def _forget_runs_in_child() -> None:
    # the parent's runs are the parent's: a forked child does not time them
    checkpointer._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_runs_in_child)
