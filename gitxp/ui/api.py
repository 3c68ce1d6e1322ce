"""The web UI's JSON API: each `/api/<name>` URL, its query parameters checked, onto `UIData`.

An endpoint takes the server (what `Served` says of it) and the request's `Query` and
returns the answer as (body, content type, extra headers); extra headers of
None mean an ordinary JSON answer, which the server may answer with 304
when the page already has it. Nothing here knows about sockets or HTTP
status lines: a bad parameter is a `BadParameter`, which the server turns
into a 400 that names it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import parse_qs, quote

from ..present.jsonable import compact_json
from ..present.model_views import models_view
from ..present.views import MAX_PAGE, MAX_POINTS, UIData
from .params import BadParameter, float_param, int_param

JSON_TYPE = "application/json; charset=utf-8"
MAX_OFFSET = 1_000_000_000
MAX_COMPARED = 1000  # runs in one series_many answer
Answer = tuple[bytes, str, dict[str, str] | None]


class Served(Protocol):
    """What endpoints use of the server: its data, and the version of the plotly.js it serves."""

    data: UIData
    plotly_version: str


class Query:
    """A request's query parameters; a name given twice means its last value."""

    def __init__(self, text: str) -> None:
        self.values = parse_qs(text, keep_blank_values=True)

    def one(self, name: str, default: str | None = None) -> str | None:
        """The value of *name*, or *default* when the request has none."""
        values = self.values.get(name)
        return values[-1] if values else default

    def need(self, name: str) -> str:
        """The value of *name*, which must be there and not empty."""
        value = self.one(name)
        if not value:
            raise BadParameter(name, f"missing query parameter {name!r}")
        return value


def json_answer(value: Any) -> Answer:
    """An answer of JSON-safe *value*."""
    return compact_json(value).encode(), JSON_TYPE, None


def _info(app: Served, query: Query) -> Answer:
    from .. import __version__

    data = app.data
    return json_answer(
        {
            "version": __version__,
            "plotly": app.plotly_version,
            "repo": data.repo.path,
            "head": data.repo.git.head(),
            "branch": data.repo.git.head_branch(),
        }
    )


def _runs(app: Served, query: Query) -> Answer:
    order = (query.one("order") or "desc").lower()
    if order not in ("asc", "desc"):
        raise BadParameter("order", f"must be asc or desc, not {order[:20]!r}")
    return json_answer(
        app.data.runs(
            filter=query.one("filter"),
            experiment=query.one("experiment"),
            sort=query.one("sort"),
            descending=order == "desc",
            offset=int_param("offset", query.one("offset"), 0, 0, MAX_OFFSET),
            limit=int_param("limit", query.one("limit"), 100, 1, MAX_PAGE),
        )
    )


def _series(app: Served, query: Query) -> Answer:
    points = int_param("points", query.one("points"), 2000, 1, MAX_POINTS)
    lo, hi = float_param("lo", query.one("lo")), float_param("hi", query.one("hi"))
    if lo is not None and hi is not None and lo > hi:
        raise BadParameter("lo", f"must not be above hi ({lo} > {hi})")
    return json_answer(
        app.data.series(
            query.need("run"),
            query.need("key"),
            points=points,
            xaxis=query.one("xaxis") or "step",
            lo=lo,
            hi=hi,
            method=query.one("method") or "minmax",
        )
    )


def _series_many(app: Served, query: Query) -> Answer:
    """One metric of several runs in one answer (the compare view's charts): the runs
    that lack the metric are left out."""
    refs = [r for v in query.values.get("runs", []) for r in v.split(",") if r.strip()]
    if not refs:
        raise BadParameter("runs", "missing query parameter 'runs'")
    if len(refs) > MAX_COMPARED:
        raise BadParameter("runs", f"at most {MAX_COMPARED:,} runs at once, not {len(refs):,}")
    points = int_param("points", query.one("points"), 2000, 1, MAX_POINTS)
    lo, hi = float_param("lo", query.one("lo")), float_param("hi", query.one("hi"))
    if lo is not None and hi is not None and lo > hi:
        raise BadParameter("lo", f"must not be above hi ({lo} > {hi})")
    return json_answer(
        app.data.series_many(
            refs,
            query.need("key"),
            points=points,
            xaxis=query.one("xaxis") or "step",
            lo=lo,
            hi=hi,
            method=query.one("method") or "minmax",
            skip_missing=True,
        )
    )


def _compare(app: Served, query: Query) -> Answer:
    refs = [r for v in query.values.get("runs", []) for r in v.split(",") if r.strip()]
    return json_answer(app.data.compare(refs))


def _diff(app: Served, query: Query) -> Answer:
    against = query.one("against") or "parent"
    text = app.data.code_diff(query.need("run"), against, query.one("path") or None)
    return text.encode(), "text/plain; charset=utf-8", None


def _artifact(app: Served, query: Query) -> Answer:
    """An artifact's bytes, always as a download, and sandboxed should a browser show it."""
    body, filename = app.data.artifact(query.need("run"), query.need("name"))
    return (
        body,
        "application/octet-stream",
        {
            "Content-Disposition": "attachment; filename*=UTF-8''" + quote(filename),
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


ENDPOINTS: dict[str, Callable[[Served, Query], Answer]] = {
    "info": _info,
    "experiments": lambda app, query: json_answer(app.data.experiments()),
    "runs": _runs,
    "head": lambda app, query: json_answer(app.data.head(query.need("run"))),
    "run": lambda app, query: json_answer(app.data.run(query.need("run"))),
    "series": _series,
    "series_many": _series_many,
    "compare": _compare,
    "code": lambda app, query: json_answer(
        app.data.code(query.need("run"), query.one("against") or "parent")
    ),
    "diff": _diff,
    "artifact": _artifact,
    "models": lambda app, query: json_answer(models_view(app.data.repo)),
}
