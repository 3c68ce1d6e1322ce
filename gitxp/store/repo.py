"""`gitxp.open()`: a repository's runs, for listing, searching and reading."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import AmbiguousRunError, InvalidValueError, ModelNotFoundError, RunNotFoundError
from ..format.ids import is_run_id
from ..git.refs import RUNS_PREFIX, read_ref
from ..git.repository import GitRepo, init_repository
from .models import RegistryMixin
from .pending import publish_pending
from .query import RunIndex
from .record import RunRecord

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow.dataset as pa_ds

    from ..format.registry import ModelReference

MIN_PREFIX = 4


class Repo(RegistryMixin):
    """The runs recorded in one git repository, and its model registry."""

    def __init__(self, git: GitRepo, progress: Callable[[str], None] | None = None) -> None:
        self.git = git
        self.path = git.root
        self._index = RunIndex(git, progress)

    def __repr__(self) -> str:
        return f"<gitxp.Repo {self.path}>"

    def close(self) -> None:
        self.git.close()

    def __enter__(self) -> Repo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- listing -------------------------------------------------------------
    def rows(
        self,
        filter: str | None = None,
        experiment: str | list[str] | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The runs as plain dicts (what `runs()` tabulates), newest first; with *limit*,
        the first *limit* of them (only those are read: `gitxp log -n 20`)."""
        listing = self._index.listing()
        chosen = listing.select(filter, experiment, order_by)
        if limit is not None:
            chosen = chosen[: max(limit, 0)]
        return listing.rows(chosen)

    def runs(
        self,
        filter: str | None = None,
        experiment: str | list[str] | None = None,
        order_by: str | list[str] | None = None,
    ) -> pd.DataFrame:
        """One row per run: id, name, experiment, status, start_time, end_time,
        code_commit, then params.<key>, metrics.<key> (last value), tags.<key>.

        *filter* uses the filter grammar, e.g.
        ``"params.lr > 0.01 and (metrics.acc >= 0.9 or tags.best = 'yes')"``;
        *order_by* takes fields with ASC/DESC, e.g. ``["metrics.acc DESC"]``.
        """
        listing = self._index.listing()
        chosen = listing.select(filter, experiment, order_by)
        return listing.frame(chosen)

    def experiments(self) -> list[str]:
        """The names of the experiments that have runs, sorted."""
        return sorted({e or "default" for e in self._index.listing().cache.column("experiment")})

    @property
    def broken_runs(self) -> dict[str, str]:
        """Run refs the last listing could not read, with the reason."""
        return dict(self._index.broken)

    # -- many runs' metrics -------------------------------------------------------
    def metrics(
        self,
        runs: str | Iterable[str] | None = None,
        keys: str | Iterable[str] | None = None,
        filter: str | None = None,
        experiment: str | list[str] | None = None,
    ) -> pd.DataFrame:
        """Every metric point of many runs, read in bulk, as one long DataFrame:
        ``run_id``, ``key`` (categoricals), ``step``, ``timestamp`` (ms), ``value``.

        *runs* names runs (ids, id prefixes, names; one or a list), *keys* one
        metric key or a list; *filter* and *experiment* select runs as in `runs()`.
        Rows are ordered by run (newest first, or the order of *runs*), key, step.
        No matching point gives an empty frame with the same columns and dtypes.
        """
        from .bulk import read_metrics

        frame: pd.DataFrame = read_metrics(self, runs, keys, filter, experiment)
        return frame

    def dataset(
        self,
        runs: str | Iterable[str] | None = None,
        filter: str | None = None,
        experiment: str | list[str] | None = None,
    ) -> pa_ds.Dataset:
        """Every metric point of the runs (or the selected ones) as a `pyarrow.dataset.Dataset`
        with the columns ``key``, ``step``, ``timestamp``, ``value`` and ``run_id``, which
        DuckDB, Polars and pyarrow query in place.

        Its files are the runs' Parquet parts, copied once into `.git/gitxp/metrics-v1/`
        (`run_id=<id>/<blob id>.parquet`); a later call copies only parts it has not seen
        and drops those of runs that are gone (docs/python-api.md).
        """
        from .dataset import open_dataset

        return open_dataset(self, runs, filter, experiment)

    # -- one run -----------------------------------------------------------------
    def resolve(self, ref: str) -> tuple[str, str]:
        """Turn a run reference into (ref name, commit id).

        A reference is a full id, a unique id prefix, a run name, or a model
        reference: ``NAME@vX.Y.Z``, ``NAME@latest`` or ``NAME#STAGE`` of a registered
        model, which names the run the version was registered from (docs/registry.md).
        A model reference wins over a run with that name; the ref name is the
        run's ref even when the run was removed (the commit is then the tag's).
        """
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidValueError("run", f"{ref!r} is not a run id, id prefix or name")
        text = ref.strip()
        if text.startswith(RUNS_PREFIX):
            text = text[len(RUNS_PREFIX) :]
        reference = _model_reference(text)
        if reference is not None:
            found = self._resolve_model(reference)
            if found is not None:
                return found
        if is_run_id(text):
            publish_pending(self.git.git_dir)
            sha = read_ref(self.git, RUNS_PREFIX + text)
            if sha is not None:
                return RUNS_PREFIX + text, sha
            kept = self._registered_run(text)
            if kept is not None:
                return kept
        return self._resolve_row(text, reference)

    def _resolve_row(self, text: str, reference: ModelReference | None) -> tuple[str, str]:
        """Resolve *text* as an id prefix or a run name, from the listing."""
        listing = self._index.listing()
        ids, names = listing.cache.column("id"), listing.cache.column("name")
        lowered = text.lower()
        if len(lowered) >= MIN_PREFIX:
            hits = [i for i, run_id in enumerate(ids) if run_id.startswith(lowered)]
            found = _only_match(text, listing.rows(hits), "name")
            if found is not None:
                return found
        hits = [i for i, name in enumerate(names) if name == text]
        found = _only_match(text, listing.rows(hits), "experiment")
        if found is not None:
            return found
        import difflib

        if reference is not None:
            from .registry import read_models

            models = list(read_models(self.git))
            close = difflib.get_close_matches(reference.model, models, n=3, cutoff=0.6)
            raise ModelNotFoundError(
                text, f"no model is named {reference.model!r} and no run {text!r}", close
            )
        known = sorted({name or "" for name in names} | {run_id[:10] for run_id in ids})
        note = ""
        if len(lowered) < MIN_PREFIX and any(run_id.startswith(lowered) for run_id in ids):
            note = f"an id prefix needs at least {MIN_PREFIX} characters"
        raise RunNotFoundError(text, difflib.get_close_matches(text, known, n=3, cutoff=0.6), note)

    def _resolve_model(self, reference: ModelReference) -> tuple[str, str] | None:
        """(run ref, commit) of the version *reference* names; None when no such model."""
        from .registry import read_models, run_of

        model = read_models(self.git, reference.model).get(reference.model)
        if model is None:
            return None
        version = model.find(reference)
        return self._run_at(run_of(self.git, version), version.commit)

    def _run_at(self, run_id: str, commit: str) -> tuple[str, str]:
        """(ref, tip) of run *run_id*; the registered *commit* when its ref is gone."""
        publish_pending(self.git.git_dir)
        return RUNS_PREFIX + run_id, read_ref(self.git, RUNS_PREFIX + run_id) or commit

    def _registered_run(self, run_id: str) -> tuple[str, str] | None:
        """A removed run that a model version gitxp registered keeps: (ref, commit)."""
        from .registry import read_events

        for events in read_events(self.git).values():
            for e in events:
                if e.run_id == run_id:
                    return RUNS_PREFIX + run_id, e.commit
        return None

    def run(self, ref: str) -> RunRecord:
        """The run named by a full id, a unique id prefix, or its name."""
        ref_name, sha = self.resolve(ref)
        return RunRecord(self.git, ref_name, sha)


def _model_reference(text: str) -> ModelReference | None:
    """*text* as a model reference (``NAME@vX.Y.Z``, ``NAME@latest``, ``NAME#STAGE``), or None.

    Every such reference holds an ``@`` or a ``#``; other text (an id, a
    prefix, a run name) is told apart here without loading the registry's
    grammar, which `gitxp show RUN` and the like need only for a model.
    """
    if "@" not in text and "#" not in text:
        return None
    from ..format.registry import parse_reference

    return parse_reference(text)


def _only_match(text: str, matches: list[dict[str, Any]], label: str) -> tuple[str, str] | None:
    """(ref, commit) of the one run row in *matches* (None: there is none). Several raise
    AmbiguousRunError, listing each by its id and its *label* field."""
    if len(matches) > 1:
        ordered = sorted(matches, key=lambda r: r["id"])
        raise AmbiguousRunError(text, [f"{r['id']} ({r.get(label)})" for r in ordered])
    return (matches[0]["ref"], matches[0]["commit"]) if matches else None


def init(path: str | os.PathLike[str] = ".") -> tuple[Repo, bool]:
    """Make *path* ready to record runs (creating the git repository if needed).

    Returns the repository and whether a new git repository was created.
    """
    git, created = init_repository(path)
    os.makedirs(git.gitxp_dir(), exist_ok=True)
    return Repo(git), created


def open(path: str | os.PathLike[str] = ".", progress: Callable[[str], None] | None = None) -> Repo:
    """Open the git repository at or above *path* to read its runs.

    *progress* receives progress lines (each ending in a carriage return, the
    last in a newline) when a listing has to read many runs it has not seen,
    as after a clone.
    """
    return Repo(GitRepo.discover(path), progress)
