"""The filter grammar: MLflow's search syntax plus `or`, `not`, parentheses and numeric params.

    filter     := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | comparison
    comparison := field op value | field ["not"] "in" "(" value ("," value)* ")"
                | field "is" ["not"] "null"
    field      := ("params" | "metrics" | "tags" | "attributes") "." key | attribute
    op         := = == != <> < <= > >= like ilike "not like" "not ilike"

Keywords are case-insensitive; keys with spaces or operators go in backticks
or double quotes (``params.`batch size` = 32``). Comparing a numeric param
with a number compares numbers (`params.lr > 0.01`); `params.lr = '0.1'`
(MLflow style, a string) also matches the number 0.1. A missing value
matches nothing but `is null`.

`compile_filter(text)` returns a predicate over run rows (the dicts of the
listing cache); errors are `FilterSyntaxError`s pointing at the column.
"""

from __future__ import annotations

import datetime as _dt
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import FilterSyntaxError
from .predicates import AllOf, AnyOf, Column, Field, Filter, Leaf, Negation, Row

_T = TypeVar("_T")
Predicate = Callable[[Row], bool]

ATTRIBUTES = {
    "id": "id",
    "run_id": "id",
    "name": "name",
    "run_name": "name",
    "experiment": "experiment",
    "experiment_name": "experiment",
    "experiment_id": "experiment",
    "status": "status",
    "start_time": "start_time",
    "end_time": "end_time",
    "code_commit": "code_commit",
    "user": "user",
    "host": "host",
    "duration": "duration",
    "dirty": "dirty",
}
_PREFIXES = {
    "params": "params",
    "param": "params",
    "metrics": "metrics",
    "metric": "metrics",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attr",
    "attribute": "attr",
    "attr": "attr",
    "run": "attr",
}
_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      |(?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
      |(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
      |(?P<op>==|!=|<>|<=|>=|=|<|>)
      |(?P<punct>[(),])
      |(?P<field>[A-Za-z_][\w]*\.(?:`[^`]*`|"[^"]*"|[^\s=!<>(),'"]+))
      |(?P<word>[A-Za-z_][\w]*)
    """,
    re.VERBOSE,
)


@dataclass
class Token:
    kind: str
    text: str
    pos: int
    value: Any = None


def _unquote(text: str) -> str:
    body = text[1:-1]
    if text[0] == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FilterSyntaxError(text, pos, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup or ""
        raw = m.group()
        if kind == "str":
            tokens.append(Token("value", raw, pos, _unquote(raw)))
        elif kind == "num":
            num = float(raw)
            tokens.append(
                Token(
                    "value",
                    raw,
                    pos,
                    int(num) if num.is_integer() and re.fullmatch(r"[-+]?\d+", raw) else num,
                )
            )
        elif kind in ("op", "punct", "field", "word"):
            tokens.append(Token(kind, raw, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _field_getter(tok: Token, text: str) -> Field:
    if tok.kind == "word":
        name = tok.text.lower()
        if name in ATTRIBUTES:
            return Field("attr", ATTRIBUTES[name])
        raise FilterSyntaxError(
            text,
            tok.pos,
            f"unknown field {tok.text!r}: use params.<key>, metrics.<key>, tags.<key> or "
            f"attributes.<{'|'.join(sorted(set(ATTRIBUTES.values())))}>",
        )
    prefix, _, key = tok.text.partition(".")
    kind = _PREFIXES.get(prefix.lower())
    if kind is None:
        raise FilterSyntaxError(
            text, tok.pos, f"unknown prefix {prefix!r}: use params., metrics., tags. or attributes."
        )
    if key[:1] in '`"' and key[-1:] == key[:1] and len(key) >= 2:
        key = key[1:-1]
    if not key:
        raise FilterSyntaxError(text, tok.pos, f"{prefix}. needs a key after the dot")
    if kind == "attr":
        attr = ATTRIBUTES.get(key.lower())
        if attr is None:
            raise FilterSyntaxError(
                text,
                tok.pos + len(prefix) + 1,
                f"unknown attribute {key!r}; known: {', '.join(sorted(set(ATTRIBUTES.values())))}",
            )
        return Field("attr", attr)
    return Field(kind, key)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and not math.isinf(value):
        return repr(value)
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value)
    return str(value)


def _time_literal(value: Any) -> Any:
    """Let times be compared with ISO dates: start_time > '2026-01-31'."""
    if isinstance(value, str):
        try:
            parsed = _dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=_dt.UTC)
        return int(parsed.timestamp() * 1000)
    return value


def _like(pattern: str, flags: int = 0) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return re.compile("".join(out), flags | re.DOTALL)


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is None:
        return False
    ln, rn = _as_number(left), _as_number(right)
    if ln is not None and rn is not None and not (isinstance(left, str) and isinstance(right, str)):
        a: Any = ln
        b: Any = rn
    elif isinstance(left, str) and isinstance(right, str):
        a, b = left, right
    else:
        if op not in ("=", "!="):
            return False
        a, b = _as_text(left), _as_text(right)
    if op == "=":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _comparison_test(op: str, literal: Any) -> Callable[[Any], bool]:
    """`_compare(op, v, literal)` as a test of one value, with a fast path for a float."""
    number = _as_number(literal)
    if number is None:
        return lambda v: _compare(op, v, literal)
    fn = _OPS[op]

    def test(v: Any) -> bool:
        # what _compare does for a float against a literal that reads as a number
        if type(v) is float:
            return bool(fn(v, number))
        return _compare(op, v, literal)

    return test


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.text.lower() in words

    def error(self, message: str, tok: Token | None = None) -> FilterSyntaxError:
        tok = tok or self.peek()
        return FilterSyntaxError(self.text, tok.pos, message)

    def parse(self) -> Filter:
        if self.peek().kind == "end":
            raise self.error("the filter is empty")
        pred = self.or_expr()
        if self.peek().kind != "end":
            raise self.error(f"unexpected {self.peek().text!r}; join conditions with and/or")
        return pred

    def or_expr(self) -> Filter:
        parts = [self.and_expr()]
        while self.is_word("or"):
            self.next()
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        return AnyOf(parts)

    def and_expr(self) -> Filter:
        parts = [self.not_expr()]
        while self.is_word("and"):
            self.next()
            parts.append(self.not_expr())
        if len(parts) == 1:
            return parts[0]
        return AllOf(parts)

    def not_expr(self) -> Filter:
        if self.is_word("not"):
            self.next()
            return Negation(self.not_expr())
        tok = self.peek()
        if tok.kind == "punct" and tok.text == "(":
            self.next()
            inner = self.or_expr()
            close = self.next()
            if close.kind != "punct" or close.text != ")":
                raise self.error(f"expected ')' to close the '(' at column {tok.pos + 1}", close)
            return inner
        return self.comparison()

    def value(self) -> Any:
        tok = self.next()
        if tok.kind == "value":
            return tok.value
        if tok.kind == "word" and tok.text.lower() in ("true", "false"):
            return tok.text.lower() == "true"
        what = "the end of the filter" if tok.kind == "end" else repr(tok.text)
        raise self.error(f"expected a value (a number or a 'quoted string'), found {what}", tok)

    def comparison(self) -> Filter:
        """A field followed by an operator: `=`-style, [NOT] LIKE/ILIKE, [NOT] IN, IS [NOT] NULL."""
        tok = self.next()
        if tok.kind not in ("field", "word") or (
            tok.kind == "word"
            and tok.text.lower() in ("and", "or", "not", "in", "is", "like", "ilike")
        ):
            what = "the end of the filter" if tok.kind == "end" else repr(tok.text)
            raise self.error(
                f"expected a field such as params.lr or metrics.acc, found {what}", tok
            )
        get = _field_getter(tok, self.text)
        is_time = tok.text.lower().split(".")[-1] in ("start_time", "end_time")
        op_tok = self.peek()
        if op_tok.kind == "op":
            self.next()
            op = {"==": "=", "<>": "!="}.get(op_tok.text, op_tok.text)
            literal = self.value()
            if is_time:
                literal = _time_literal(literal)
            return Leaf(get, _comparison_test(op, literal))
        negate = False
        if self.is_word("not"):
            self.next()
            negate = True
        if self.is_word("like", "ilike"):
            return self.like(get, negate)
        if self.is_word("in"):
            return self.membership(get, negate)
        if negate:
            raise self.error("expected LIKE, ILIKE or IN after NOT")
        if self.is_word("is"):
            return self.null_test(get)
        what = "the end of the filter" if op_tok.kind == "end" else repr(op_tok.text)
        raise self.error(
            f"expected a comparison (=, !=, <, <=, >, >=, LIKE, IN, IS NULL) "
            f"after {tok.text!r}, found {what}",
            op_tok,
        )

    def like(self, get: Field, negate: bool) -> Filter:
        """`[NOT] LIKE 'pattern'` (ILIKE: ignoring case); a missing value never matches."""
        word = self.next().text.lower()
        pattern_tok = self.peek()
        literal = self.value()
        if not isinstance(literal, str):
            raise self.error("LIKE needs a 'quoted pattern'", pattern_tok)
        rx = _like(literal, re.IGNORECASE if word == "ilike" else 0)

        def like(v: Any) -> bool:
            return v is not None and bool(rx.fullmatch(_as_text(v)))

        return Leaf(get, (lambda v: v is not None and not like(v)) if negate else like)

    def membership(self, get: Field, negate: bool) -> Filter:
        """`[NOT] IN (value, ...)`; a missing value is in no list."""
        self.next()
        open_tok = self.next()
        if open_tok.kind != "punct" or open_tok.text != "(":
            raise self.error("expected '(' after IN", open_tok)
        values = [self.value()]
        while self.peek().kind == "punct" and self.peek().text == ",":
            self.next()
            values.append(self.value())
        close = self.next()
        if close.kind != "punct" or close.text != ")":
            raise self.error("expected ',' or ')' in the IN list", close)

        def member(v: Any) -> bool:
            return v is not None and any(_compare("=", v, x) for x in values)

        return Leaf(get, (lambda v: v is not None and not member(v)) if negate else member)

    def null_test(self, get: Field) -> Filter:
        """`IS NULL` / `IS NOT NULL`: whether the row has the field."""
        self.next()
        not_null = False
        if self.is_word("not"):
            self.next()
            not_null = True
        if not self.is_word("null"):
            raise self.error("expected NULL after IS")
        self.next()
        return Leaf(get, (lambda v: v is not None) if not_null else (lambda v: v is None))


def compile_filter(text: str) -> Filter:
    """Parse *text* into a predicate over run rows (a `Filter`, which can also select
    among many runs column by column); raise FilterSyntaxError if malformed."""
    if not isinstance(text, str):
        raise FilterSyntaxError(str(text), 0, "a filter must be a string")
    return _Parser(text).parse()


def field_getters(text: str) -> dict[str, Field]:
    """The fields filter *text* reads, as written (`metrics.acc`, `status`), with their getters.

    For showing the values a condition was judged on (the metric gate does);
    compile the filter first, which reports any error in it.
    """
    getters: dict[str, Field] = {}
    for tok in tokenize(text):
        is_field = tok.kind == "field" or (tok.kind == "word" and tok.text.lower() in ATTRIBUTES)
        if is_field and tok.text not in getters:
            getters[tok.text] = _field_getter(tok, text)
    return getters


def parse_order_by(
    spec: str | list[str] | tuple[str, ...] | None,
) -> list[tuple[Field, bool]]:
    """Parse ["metrics.acc DESC", "start_time"] into (getter, descending) pairs."""
    if spec is None:
        return []
    if not isinstance(spec, (str, list, tuple)):
        raise FilterSyntaxError(repr(spec), 0, "give a string or a list of strings", "order_by")
    items = [spec] if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        if not isinstance(item, str):
            raise FilterSyntaxError(str(item), 0, "entries must be strings", "order_by")
        for clause in (c.strip() for c in item.split(",") if c.strip()):
            parts = clause.rsplit(None, 1)
            descending = False
            field = clause
            if len(parts) == 2 and parts[1].lower() in ("asc", "desc"):
                field, descending = parts[0], parts[1].lower() == "desc"
            try:
                tokens = tokenize(field)
                if len(tokens) != 2 or tokens[0].kind not in ("field", "word"):
                    raise FilterSyntaxError(
                        clause, 0, "give a field and an optional ASC or DESC", "order_by"
                    )
                out.append((_field_getter(tokens[0], clause), descending))
            except FilterSyntaxError as exc:
                if exc.what == "order_by":
                    raise
                raise FilterSyntaxError(clause, exc.position, exc.message, "order_by") from None
    return out


def sort_rows(rows: list[Row], order: Sequence[tuple[Callable[[Row], Any], bool]]) -> list[Row]:
    """Sort rows by each (getter, descending) in turn; missing values always last."""
    return _sorted(rows, [(get, descending) for get, descending in order])


def sort_indices(
    indices: Sequence[int], order: Sequence[tuple[Field, bool]], column: Column
) -> list[int]:
    """`sort_rows` for runs given by their indexes into the columns *column* gives."""
    by: list[tuple[Callable[[int], Any], bool]] = [
        (column(field).__getitem__, descending) for field, descending in order
    ]
    return _sorted(list(indices), by)


def _sorted(items: list[_T], order: list[tuple[Callable[[_T], Any], bool]]) -> list[_T]:
    for get, descending in reversed(order):
        present: list[_T] = []
        missing: list[_T] = []
        for item in items:
            v = get(item)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                missing.append(item)
            else:
                present.append(item)

        def key(item: _T, get: Callable[[_T], Any] = get) -> tuple[int, Any]:
            v = get(item)
            n = _as_number(v)
            return (0, n) if n is not None else (1, _as_text(v))

        present.sort(key=key, reverse=descending)
        items = present + missing
    return items
