"""Machine utilisation of a run, sampled in a background thread as `system/...` metrics.

Turn it on with `gitxp.start_run(..., system_metrics=True)`, with
`GITXP_SYSTEM_METRICS=1` in the environment, or with `gitxp run
--system-metrics`. Every `GITXP_SYSTEM_METRICS_SECONDS` (default 10) the
sampler records ordinary metric points whose step is the number of whole
seconds since the run started (wall-clock steps; the timestamp column keeps
millisecond precision):

    system/cpu_percent                 whole machine, 0-100
    system/memory_percent              whole machine, 0-100
    system/memory_used_mb              whole machine
    system/process_cpu_percent         the run's process and its children (100 = one core)
    system/process_memory_rss_mb       the run's process and its children
    system/disk_read_mb_per_s          whole machine, since the previous sample
    system/disk_write_mb_per_s
    system/network_recv_mb_per_s
    system/network_sent_mb_per_s
    system/gpu<i>/utilization_percent  per NVIDIA GPU, when NVML is available
    system/gpu<i>/memory_used_mb
    system/gpu<i>/memory_percent
    system/gpu<i>/temperature_c
    system/gpu<i>/power_w

psutil comes with the `system` extra (`pip install 'gitxp[system]'`), NVML
bindings with `gpu`. A machine without NVIDIA GPUs or without the driver
records no gpu series and no error. A metric the platform cannot measure
(disk counters inside some containers) is left out rather than logged as 0.

The sampler only appends to its own series, which the run's lock-free
logging path allows from any thread; the training loop pays nothing but
the GIL time of one sample (about a millisecond) per interval.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InvalidValueError, MissingExtraError

log = logging.getLogger("gitxp.tracking.system_metrics")

ENV_ENABLE = "GITXP_SYSTEM_METRICS"
ENV_SECONDS = "GITXP_SYSTEM_METRICS_SECONDS"
DEFAULT_SECONDS = 10.0
PREFIX = "system/"
# GITXP_SYSTEM_METRICS=parent tells a script run by `gitxp run --system-metrics`
# that the launcher already samples (the whole process tree), so it must not.
PARENT_SAMPLES = "parent"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off", PARENT_SAMPLES}
_MB = 1024 * 1024
# metric name -> field of psutil's disk_io_counters() / net_io_counters(), as MB/s
DISK_RATES = {"disk_read_mb_per_s": "read_bytes", "disk_write_mb_per_s": "write_bytes"}
NETWORK_RATES = {"network_recv_mb_per_s": "bytes_recv", "network_sent_mb_per_s": "bytes_sent"}
CHILD_SCAN_SECONDS = 5.0  # how often the process tree is listed again (new workers)

Sink = Callable[[str, float, int, int], None]
"""Where samples go: sink(key, value, step, timestamp_ms)."""


def enabled_from_env() -> bool:
    """Whether `GITXP_SYSTEM_METRICS` asks for system metrics (unset: no)."""
    raw = os.environ.get(ENV_ENABLE, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise InvalidValueError(ENV_ENABLE, f"{raw!r} must be 1 or 0 (true/false, yes/no, on/off)")


def parent_samples() -> bool:
    """True inside a command whose `gitxp run --system-metrics` launcher samples already."""
    return os.environ.get(ENV_ENABLE, "").strip().lower() == PARENT_SAMPLES


def interval_from_env(value: float | None = None) -> float:
    """The sampling interval: *value* if given, else `GITXP_SYSTEM_METRICS_SECONDS`, else 10."""
    if value is None:
        raw = os.environ.get(ENV_SECONDS, "").strip()
        if not raw:
            return DEFAULT_SECONDS
        try:
            value = float(raw)
        except ValueError:
            raise InvalidValueError(ENV_SECONDS, f"{raw!r} is not a number of seconds") from None
        what = ENV_SECONDS
    else:
        what = "system_metrics_seconds"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidValueError(what, f"{value!r} must be a positive number of seconds")
    if value == float("inf"):
        raise InvalidValueError(what, "must be a finite number of seconds")
    return float(value)


def resolve(enabled: bool | None, seconds: float | None) -> float | None:
    """The sampling interval a run asked for, or None for no sampling; raises on bad settings.

    *enabled* None means `$GITXP_SYSTEM_METRICS`. Inside a command launched
    by `gitxp run --system-metrics` the launcher samples, so this returns None.
    """
    if enabled is None:
        enabled = enabled_from_env()
    elif not isinstance(enabled, bool):
        raise InvalidValueError("system_metrics", f"{enabled!r} must be True, False or None")
    if not enabled or parent_samples():
        return None
    interval = interval_from_env(seconds)
    _import_psutil()
    return interval


def _import_psutil() -> Any:
    try:
        import psutil
    except ImportError:
        raise MissingExtraError("system metrics", "psutil", "system") from None
    return psutil


class _Gpus:
    """NVIDIA GPUs through NVML; empty when the library or the driver is missing."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        self.nvml: Any = None
        try:
            import pynvml  # from the nvidia-ml-py package

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self.nvml = pynvml
        except Exception:  # no package, no driver, no device: no GPU series
            self.handles = []

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        nvml = self.nvml
        for i, handle in enumerate(self.handles):
            prefix = f"{PREFIX}gpu{i}/"
            # each reading on its own: consumer GPUs refuse some (power, utilisation)
            with contextlib.suppress(Exception):
                util = nvml.nvmlDeviceGetUtilizationRates(handle)
                out[prefix + "utilization_percent"] = float(util.gpu)
            with contextlib.suppress(Exception):
                mem = nvml.nvmlDeviceGetMemoryInfo(handle)
                out[prefix + "memory_used_mb"] = mem.used / _MB
                if mem.total:
                    out[prefix + "memory_percent"] = 100.0 * mem.used / mem.total
            with contextlib.suppress(Exception):
                temp = nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
                out[prefix + "temperature_c"] = float(temp)
            with contextlib.suppress(Exception):
                out[prefix + "power_w"] = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
        return out

    def close(self) -> None:
        if self.nvml is not None:
            with contextlib.suppress(Exception):
                self.nvml.nvmlShutdown()
            self.nvml = None


class Probe:
    """Reads the machine's counters; `sample()` returns the `system/...` values since the last call."""

    def __init__(self, pid: int | None = None, gpus: bool = True) -> None:
        self.psutil = _import_psutil()
        self.process = self.psutil.Process(pid if pid is not None else os.getpid())
        self._procs: dict[int, Any] = {}
        self._children: list[Any] = []
        self._scanned = -CHILD_SCAN_SECONDS
        self._gpus = _Gpus() if gpus else None
        self.psutil.cpu_percent(interval=None)  # the first reading only sets the baseline
        self._tree()
        self._last = time.monotonic()
        self._disk = self._disk_counters()
        self._net = self._net_counters()

    def _disk_counters(self) -> Any:
        try:
            return self.psutil.disk_io_counters()
        except Exception:  # missing /proc/diskstats in some containers
            return None

    def _net_counters(self) -> Any:
        try:
            return self.psutil.net_io_counters()
        except Exception:
            return None

    def _tree(self) -> tuple[float, float] | None:
        """CPU % and RSS bytes of the process and all its descendants; None once it has exited."""
        psutil = self.psutil
        try:
            if self.process.status() == psutil.STATUS_ZOMBIE:
                return None
            now = time.monotonic()
            if now - self._scanned >= CHILD_SCAN_SECONDS:
                # listing descendants reads every /proc/<pid>: most of a sample's cost
                self._children = self.process.children(recursive=True)
                self._scanned = now
        except psutil.Error:
            return None
        procs = [self.process, *self._children]
        cpu = 0.0
        rss = 0.0
        seen: dict[int, Any] = {}
        for proc in procs:
            # keep one Process object per pid: cpu_percent compares with its previous call
            proc = self._procs.get(proc.pid, proc)
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent(interval=None)
                    rss += proc.memory_info().rss
            except psutil.Error:  # exited between listing and reading
                continue
            seen[proc.pid] = proc
        self._procs = seen
        return cpu, rss

    def sample(self) -> dict[str, float]:
        psutil = self.psutil
        now = time.monotonic()
        elapsed = max(now - self._last, 1e-6)
        self._last = now
        out: dict[str, float] = {}
        out[PREFIX + "cpu_percent"] = float(psutil.cpu_percent(interval=None))
        mem = psutil.virtual_memory()
        out[PREFIX + "memory_percent"] = float(mem.percent)
        out[PREFIX + "memory_used_mb"] = (mem.total - mem.available) / _MB
        tree = self._tree()
        if tree is not None:  # a finished command has no process to measure
            out[PREFIX + "process_cpu_percent"] = tree[0]
            out[PREFIX + "process_memory_rss_mb"] = tree[1] / _MB
        disk = self._disk_counters()
        out.update(_rates(disk, self._disk, elapsed, DISK_RATES))
        self._disk = disk
        net = self._net_counters()
        out.update(_rates(net, self._net, elapsed, NETWORK_RATES))
        self._net = net
        if self._gpus is not None:
            out.update(self._gpus.sample())
        return out

    def close(self) -> None:
        if self._gpus is not None:
            self._gpus.close()


def _rates(new: Any, old: Any, seconds: float, names: Mapping[str, str]) -> dict[str, float]:
    """MB/s between two readings of psutil counters, per metric name (*names*: name -> field).

    Nothing until there are two readings. Counters wrap or reset (a NIC
    going away): that reports 0 rather than a negative rate.
    """
    if new is None or old is None:
        return {}
    return {
        PREFIX + name: max(getattr(new, field) - getattr(old, field), 0) / _MB / seconds
        for name, field in names.items()
    }


class SystemMetricsSampler:
    """A daemon thread that feeds `Probe.sample()` to *sink* every *interval* seconds.

    *start_ms* is the run's start time: steps are whole seconds since then.
    `stop()` takes a last sample (so even a run shorter than the interval
    has one) and waits for the thread; it is safe to call twice.
    """

    def __init__(
        self,
        sink: Sink,
        start_ms: int,
        interval: float = DEFAULT_SECONDS,
        pid: int | None = None,
        name: str = "gitxp-system-metrics",
    ) -> None:
        self.sink = sink
        self.start_ms = int(start_ms)
        self.interval = interval_from_env(interval)
        self.probe = Probe(pid)
        self.samples = 0
        self._stop = threading.Event()
        self._last_sample = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> SystemMetricsSampler:
        global _exit_hook
        self._thread.start()
        _live.add(self)
        if not _exit_hook:  # stopped and joined before the interpreter finalises
            from .checkpointer import at_interpreter_exit

            _exit_hook = True
            at_interpreter_exit(_stop_all)
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        from .checkpointer import block_async_signals

        block_async_signals()  # Ctrl-C and `kill` are the main thread's
        while not self._stop.wait(self.interval):
            self._record()

    def _record(self) -> None:
        try:
            values = self.probe.sample()
            now_ms = time.time_ns() // 1_000_000
            step = max(0, (now_ms - self.start_ms) // 1000)
            for key, value in values.items():
                self.sink(key, value, step, now_ms)
            self.samples += 1
            self._last_sample = time.monotonic()
        except Exception as exc:  # a failing probe must never take the training loop down
            log.warning("gitxp: system metrics sample failed: %s", exc)

    def stop(self, final_sample: bool = True) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        # rates and CPU % need some time since the previous reading to mean anything
        if final_sample and time.monotonic() - self._last_sample >= min(self.interval, 1.0) / 2:
            self._record()
        self.probe.close()


_live: weakref.WeakSet[SystemMetricsSampler] = weakref.WeakSet()
_exit_hook = False


def _stop_all() -> None:
    """Stop every sampler thread still running (the interpreter is exiting)."""
    for sampler in list(_live):
        sampler._stop.set()
    for sampler in list(_live):
        if sampler._thread.is_alive():
            sampler._thread.join(timeout=5)


class BufferedSampler:
    """Samples another process tree into memory, to be written into a run later.

    `gitxp run --system-metrics` uses it: while CMD runs, CMD owns the run's
    ref, so the launcher keeps its samples and writes them with the final
    commit (`replay`). A launcher killed with SIGKILL loses them.
    """

    def __init__(self, pid: int, start_ms: int, interval: float) -> None:
        self.points: dict[str, tuple[list[int], list[int], list[float]]] = {}
        self.sampler = SystemMetricsSampler(self._add, start_ms, interval, pid=pid).start()

    def _add(self, key: str, value: float, step: int, ts: int) -> None:
        steps, stamps, values = self.points.setdefault(key, ([], [], []))
        steps.append(step)
        stamps.append(ts)
        values.append(value)

    def stop(self) -> None:
        self.sampler.stop()

    def replay(self, run: Any) -> None:
        """Log everything sampled into *run* and record the interval in its metadata."""
        self.sampler.stop()
        for key, (steps, stamps, values) in sorted(self.points.items()):
            run.log_metric_array(key, values, steps, stamps)
        run._set_meta(system_metrics_seconds=self.sampler.interval)
