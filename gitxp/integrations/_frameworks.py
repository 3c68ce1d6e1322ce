"""What the training-framework callbacks share: lazy imports, joining a run, cleaning values.

Every callback (Lightning, Transformers, Keras, scikit-learn) records into
the run that is active when it first needs one — the `with
gitxp.start_run()` block around the training code, or the run of `gitxp
run` — and otherwise starts its own run, which it also ends. A run the
callback did not start is never ended by it.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import logging
import math
import os
from collections.abc import Mapping
from typing import Any

from ..errors import MissingExtraError

log = logging.getLogger("gitxp.integrations._frameworks")

MAX_PARAM_DEPTH = 6  # nested configs deeper than this are kept as text


def require(module: str, feature: str, extra: str, package: str | None = None) -> Any:
    """Import *module* or raise a one-line MissingExtraError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or module).split(".")[0]
        if missing == "torch" and module.split(".")[0] != "torch":
            # the framework is there but its backend is not; the extra would not bring it
            raise MissingExtraError(
                feature,
                "torch",
                extra,
                "install PyTorch first (`pip install torch`, or the build for your CUDA "
                f"from pytorch.org), then `pip install 'gitxp[{extra}]'`",
            ) from None
        raise MissingExtraError(feature, package or module.split(".")[0], extra) from None


class RunHandle:
    """The run a callback writes to, joined or started lazily, ended only if we started it."""

    def __init__(
        self,
        run: Any = None,
        *,
        experiment: str | None = None,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        repo: str | os.PathLike[str] | None = None,
        system_metrics: bool | None = None,
    ) -> None:
        self._run = run
        self.owned = False
        self._ended: tuple[str, str] | None = None  # (run id, repo root) of the run we ended
        self._start_args: dict[str, Any] = {
            "experiment": experiment,
            "name": name,
            "tags": dict(tags) if tags else None,
            "repo": repo,
            "system_metrics": system_metrics,
        }

    @property
    def started(self) -> bool:
        return self._run is not None

    @property
    def run_id(self) -> str | None:
        """The id of the run in use, or of the one this handle last ended."""
        if self._run is not None:
            return str(self._run.id)
        return self._ended[0] if self._ended else None

    def get(self) -> Any:
        """The run: the one given, else the active one, else a new one we own."""
        if self._run is None and self._ended is not None:
            self._run = _reopen(*self._ended)
            self.owned = True
        if self._run is None:
            from ..tracking.fluent import active_run, start_run

            run = active_run()
            if run is None:
                run = start_run(**self._start_args)
                self.owned = True
            self._run = run
        return self._run

    def end(self, status: str = "FINISHED", error: str | None = None) -> None:
        """End the run if this callback started it; a joined run is left to its owner."""
        run, owned = self._run, self.owned
        if run is None or not owned:
            return
        self._run = None
        self.owned = False
        if not run._joined:
            self._ended = (run.id, run._git.root)
        run.end(status, error)

    def finish(self, status: str = "FINISHED") -> None:
        """Commit what the run holds, then end it if this handle started it.

        Before the callback has a run there is nothing to commit (and none is started).
        """
        if self._run is not None:
            self._run.checkpoint()
        self.end(status)


class RunCallback:
    """The constructor every framework callback shares: where its run comes from.

    A callback class names this first among its bases, before the
    framework's own class, and passes the run arguments on with
    ``super().__init__(experiment, name, run=..., tags=..., repo=...,
    system_metrics=...)``; the run is then in ``self._handle`` (a
    `RunHandle`), and the framework class's constructor has run too.
    """

    def __init__(
        self,
        experiment: str | None = None,
        name: str | None = None,
        *,
        run: Any = None,
        tags: Mapping[str, Any] | None = None,
        repo: str | os.PathLike[str] | None = None,
        system_metrics: bool | None = None,
    ) -> None:
        super().__init__()
        self._handle = RunHandle(
            run,
            experiment=experiment,
            name=name,
            tags=tags,
            repo=repo,
            system_metrics=system_metrics,
        )


def _reopen(run_id: str, root: str) -> Any:
    """Add to a run this callback already ended (trainer.test() or evaluate() after fit()).

    The run keeps its final status; what comes later is committed on top of it.
    """
    from ..git.repository import GitRepo
    from ..tracking.context import push_active
    from ..tracking.options import RunOptions
    from ..tracking.run import Run

    run = Run(GitRepo.discover(root), RunOptions(system_metrics=False), _join=run_id)
    push_active(run)  # so that interpreter exit commits what it holds
    return run


def param_value(value: Any, depth: int = 0) -> Any:
    """A JSON-safe stand-in for a framework's config value (enums, dtypes, paths, tensors...)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        with contextlib.suppress(Exception):  # a numpy or torch scalar
            return param_value(value.item(), depth)
    if depth < MAX_PARAM_DEPTH:
        if isinstance(value, Mapping):
            return {str(k): param_value(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [param_value(v, depth + 1) for v in value]
    if isinstance(value, enum.Enum):  # e.g. an IntervalStrategy: its value reads best
        return param_value(value.value, depth + 1) if depth < MAX_PARAM_DEPTH else value.name
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."


def clean_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Params with string keys and JSON-safe values; keys gitxp refuses are made safe."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        out[safe_key(f"{prefix}{key}")] = param_value(value)
    return out


def log_params(run: Any, params: Mapping[str, Any], what: str = "params") -> None:
    """Record *params*, keeping every one that does not clash with a value already logged.

    Params are fixed once logged; a framework re-logging a key the script
    set differently (or a second model in the same run) must not stop the
    training loop, so the clashing keys are skipped with a warning on stderr.
    """
    from ..errors import GitxpError

    existing = run.params
    clashes = sorted(k for k, v in params.items() if k in existing and existing[k] != v)
    keep = {k: v for k, v in params.items() if k not in clashes}
    if clashes:
        shown = ", ".join(f"{k}={params[k]!r} (kept {existing[k]!r})" for k in clashes[:5])
        more = f" and {len(clashes) - 5} more" if len(clashes) > 5 else ""
        warn(f"{what} already logged with other values were not changed: {shown}{more}")
    try:
        run.log_params(keep)
    except GitxpError as exc:  # a value gitxp cannot store even after cleaning
        warn(f"{what} were not recorded: {exc}")


def safe_key(key: str) -> str:
    """*key* with characters gitxp keys do not allow replaced by `_`."""
    from ..format.values import check_key

    try:
        return check_key("param", key)
    except Exception:
        allowed = set("_-./:+=@, ")
        fixed = "".join(c if c.isalnum() or c in allowed else "_" for c in key)
        fixed = "/".join(part for part in fixed.split("/") if part) or "_"
        return fixed[:250]


def metric_values(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric entries of a framework's log dict as floats (text entries are skipped)."""
    out: dict[str, float] = {}
    for key, value in values.items():
        number = to_number(value)
        if number is not None:
            out[safe_key(f"{prefix}{key}")] = number
    return out


def to_number(value: Any) -> float | None:
    """*value* as a float if it is a number or a one-element tensor/array, else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    item = getattr(value, "item", None)
    if callable(item):
        try:
            got = item()
        except Exception:  # a tensor with more than one element
            return None
        return float(got) if isinstance(got, (int, float)) else None
    return None


def warn(message: str) -> None:
    """Report a problem (a logged warning) without stopping the training loop."""
    log.warning("gitxp: %s", message)
