"""What a run ran on: Python, platform, packages, GPUs, git remote and allow-listed variables.

Captured once per process and reused by every run it records. Nothing
secret is recorded by accident: only allow-listed environment variables are
kept, and of those any whose name or value looks like a credential is
replaced by ``[redacted]`` and named in ``redacted``.
"""

from __future__ import annotations

import os
import platform
import shutil
import stat
import subprocess
import sys
from typing import Any

from .redaction import REDACTED, looks_secret_variable

# Exact names and prefixes of variables that describe how a job ran.
ALLOWED_NAMES = frozenset(
    {
        "CUDA_VISIBLE_DEVICES",
        "CUBLAS_WORKSPACE_CONFIG",
        "PYTHONHASHSEED",
        "PYTHONPATH",
        "PYTHONOPTIMIZE",
        "VIRTUAL_ENV",
        "CONDA_DEFAULT_ENV",
        "CONDA_PREFIX",
        "LANG",
        "LC_ALL",
        "TZ",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "WORLD_SIZE",
        "RANK",
        "LOCAL_RANK",
        "MASTER_PORT",
    }
)
ALLOWED_PREFIXES = (
    "GITXP_",
    "CUDA_",
    "NCCL_",
    "TORCH_",
    "TF_",
    "XLA_",
    "JAX_",
    "HF_",
    "TRANSFORMERS_",
    "SLURM_",
    "PBS_",
    "LSB_",
    "SGE_",
    "KMP_",
    "MKL_",
    "OMP_",
    "PYTORCH_",
    "ACCELERATE_",
)
# Other tools' variables that share an allowed prefix: Terraform's live under
# TF_ too, and TF_VAR_* holds its input variables (database passwords, keys)
# under any name. Never recorded unless named in GITXP_ENV_ALLOW.
DENIED_PREFIXES = ("TF_VAR_", "TF_TOKEN_", "TF_CLI_", "TF_HTTP_")
_cached: dict[str, Any] | None = None


def allowed_variable(name: str, extra: frozenset[str] = frozenset()) -> bool:
    """True when variable *name* is on the allow-list (or in GITXP_ENV_ALLOW)."""
    if name in extra:
        return True
    if name.startswith(DENIED_PREFIXES):
        return False
    return name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)


def capture_variables(environ: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Allow-listed variables with secrets redacted, and the names redacted."""
    env = dict(os.environ if environ is None else environ)
    extra = frozenset(n.strip() for n in env.get("GITXP_ENV_ALLOW", "").split(",") if n.strip())
    kept: dict[str, str] = {}
    redacted: list[str] = []
    for name in sorted(env):
        if not allowed_variable(name, extra):
            continue
        value = env[name]
        if looks_secret_variable(name, value):
            kept[name] = REDACTED
            redacted.append(name)
        else:
            kept[name] = value
    return kept, redacted


PACKAGES_CACHE = "packages-v2.json"
PACKAGES_CACHE_KEYS = 4  # interpreters and entry points a repository sees in turn
_METADATA_DIRS = (".dist-info", ".egg-info")


def _install_dir(path: str, roots: tuple[str, ...]) -> bool:
    """True for a directory packages are installed into: site-packages, or anything
    under the interpreter's *roots* (its prefixes: the stdlib, lib-dynload).

    Installing, upgrading or removing a distribution there adds or renames a
    `*.dist-info` directory, which changes the directory's mtime.
    """
    if os.path.basename(path) in ("site-packages", "dist-packages"):
        return True
    full = os.path.abspath(path)
    return any(full == root or full.startswith(root + os.sep) for root in roots)


def _entry_key(entry: str, roots: tuple[str, ...]) -> list[Any]:
    """What one `sys.path` entry contributes to the installed distributions.

    An install directory counts by its mtime. Any other directory (the
    script's own, one on PYTHONPATH, a project installed in develop mode)
    counts by the metadata directories it holds and their files' mtimes: its
    own mtime moves whenever a run writes a file beside its script, which
    would make every such run scan all distributions again.
    """
    path = entry or "."
    try:
        st = os.stat(path)
        if not stat.S_ISDIR(st.st_mode) or _install_dir(path, roots):
            return [entry, st.st_mtime_ns]
        metadata = []
        with os.scandir(path) as it:
            for item in it:
                if item.name.endswith(_METADATA_DIRS):
                    stamps: list[int | None] = []
                    for name in ("METADATA", "PKG-INFO"):
                        try:
                            stamps.append(os.stat(os.path.join(item.path, name)).st_mtime_ns)
                        except OSError:
                            stamps.append(None)
                    metadata.append([item.name, *stamps])
    except OSError:
        return [entry, None]
    return [entry, sorted(metadata)]


def _packages_key() -> list[Any]:
    """What the installed distributions depend on: the interpreter and each sys.path entry."""
    roots = tuple({os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})
    return [sys.prefix, sys.executable, sys.version, *(_entry_key(e, roots) for e in sys.path)]


def _cached_packages(cache_dir: str | None) -> dict[str, str]:
    """`_packages()`, served from a file under *cache_dir* while nothing was installed.

    Reading the metadata of every installed distribution costs tens of
    milliseconds per hundred packages, paid by every process that records
    a run (each `gitxp run`); the cache makes that a single small read. It
    keeps the lists of the last few keys, since `gitxp run`, `python
    train.py` and a notebook each see `sys.path` differently.
    """
    if cache_dir is None:
        return _packages()
    import json

    path = os.path.join(cache_dir, PACKAGES_CACHE)
    key = _packages_key()
    entries: list[Any] = []
    try:
        with open(path, encoding="utf-8") as f:
            entries = [e for e in json.load(f)["entries"] if isinstance(e, dict)]
        for entry in entries:
            if entry.get("key") == key and isinstance(entry.get("packages"), dict):
                return dict(entry["packages"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        entries = []
    found = _packages()
    entries = [{"key": key, "packages": found}, *entries][:PACKAGES_CACHE_KEYS]
    try:
        import tempfile

        os.makedirs(cache_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".packages-", dir=cache_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"entries": entries}, f)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only repository records runs too, just without the cache
    return found


PLATFORM_CACHE = "platform-v1.json"


def _platform_key() -> list[str]:
    """What `platform.platform()` depends on: the kernel and the interpreter's binary."""
    u = os.uname()
    return [u.sysname, u.release, u.version, u.machine, sys.executable, sys.version]


def _cached_platform(cache_dir: str | None) -> str:
    """`platform.platform()`, kept in a file under *cache_dir* for as long as its key holds.

    On Linux that call runs `uname -p` in a subprocess and scans the Python
    binary for its libc version: 10-30 ms of every `gitxp run` for a string
    that changes only with the kernel or the interpreter.
    """
    if cache_dir is None:
        return platform.platform()
    import json

    path = os.path.join(cache_dir, PLATFORM_CACHE)
    key = _platform_key()
    try:
        with open(path, encoding="utf-8") as f:
            stored = json.load(f)
        if stored["key"] == key and isinstance(stored["platform"], str):
            return stored["platform"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    value = platform.platform()
    try:
        import tempfile

        os.makedirs(cache_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".platform-", dir=cache_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"key": key, "platform": value}, f)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only repository records runs too, just without the cache
    return value


def _packages() -> dict[str, str]:
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        try:
            name = dist.metadata["Name"]
        except Exception:
            continue
        if name and name not in found:
            found[name] = dist.version
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def _gpus() -> list[dict[str, str]]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append({"name": parts[0], "driver": parts[1], "memory": parts[2]})
    return gpus


def capture(remote_url: str | None = None, cache_dir: str | None = None) -> dict[str, Any]:
    """The environment of this process, as stored in a run's `env.json`.

    *cache_dir* (gitxp passes `.git/gitxp/`) keeps the list of installed
    distributions between processes, invalidated when anything is installed.
    """
    global _cached
    if _cached is None:
        variables, redacted = capture_variables()
        _cached = {
            "python": {
                "version": platform.python_version(),
                "implementation": platform.python_implementation(),
                "executable": sys.executable,
            },
            "platform": {
                "system": platform.system(),
                "release": platform.release(),
                "machine": platform.machine(),
                "platform": _cached_platform(cache_dir),
            },
            "cpu_count": os.cpu_count(),
            "gpus": _gpus(),
            "packages": _cached_packages(cache_dir),
            "variables": variables,
            "redacted": redacted,
        }
    env = dict(_cached)
    env["git"] = {"remote": remote_url}
    return env
