"""``compare.py --where "model=lenet and optimizer.lr<0.01 and test_acc>0.98"``: which runs to keep.

A query is conditions joined by ``and`` and ``or`` (``and`` binds tighter; parentheses
group), each ``KEY OP VALUE`` with OP one of ``= != < <= > >=``, or ``KEY in [V, V, ...]``.
KEY is a config key (``optimizer.lr``), a config group (``model``), a result
(``test_acc``, ``best_val_acc``, ``epochs_run``...), ``status``, ``tags`` (``tags=baseline``: runs
tagged so) or ``notes``; VALUE a number, a
word, or a quoted string. ``=`` compares numbers as numbers and words without regard
to case; ``<`` and the like need numbers. A run without a value for KEY does not
match. A malformed query, or a KEY that no run has, is refused in one line.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from sweeplab.errors import ConfigError
from sweeplab.reports.run_records import RunRecord
from sweeplab.runs.hparams import LABELS, TAGS, split_tags

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}
TOKEN = re.compile(
    r"""\s*(?:(?P<op><=|>=|!=|=|<|>)|(?P<punct>[\[\],()])|(?P<quoted>'[^']*'|"[^"]*")|(?P<word>[^\s=<>!\[\],()'"]+))"""
)
WORDS = ("and", "or", "in")


class QueryError(ConfigError):
    def __init__(self, query: str, problem: str) -> None:
        super().__init__("--where", query, problem)


@dataclass(frozen=True)
class Condition:
    key: str
    op: str  # = != < <= > >= in
    values: tuple[str, ...]

    def matches(self, record: RunRecord) -> bool:
        found = record_values(record, self.key)
        if self.op == "!=":
            return bool(found) and not any(_equal(value, self.values[0]) for value in found)
        if self.op in ("=", "in"):
            return any(_equal(value, wanted) for value in found for wanted in self.values)
        limit = float(self.values[0])
        return any(_is_number(value) and OPERATORS[self.op](float(value), limit) for value in found)


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Any, ...]  # Condition | AllOf

    def matches(self, record: RunRecord) -> bool:
        return any(part.matches(record) for part in self.parts)


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Any, ...]

    def matches(self, record: RunRecord) -> bool:
        return all(part.matches(record) for part in self.parts)


def record_values(record: RunRecord, key: str) -> list[Any]:
    """The run's values named ``key``: its status, config group choice, hyperparameter or result
    (a null value too: ``KEY=null`` matches it)."""
    if key == "status":
        return [record.status]
    if key == TAGS:
        return split_tags(record.hparams.get(TAGS))
    return [source[key] for source in (record.hparams, record.results) if key in source]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(float(value))


def _equal(value: Any, wanted: str) -> bool:
    """``value`` (of a run) is the ``wanted`` text: numbers as numbers, words without regard to case."""
    if value is None:
        return wanted.lower() in ("none", "null", "")
    if isinstance(value, bool):
        return wanted.lower() == str(value).lower()
    if _is_number(value):
        try:
            return math.isclose(float(value), float(wanted), rel_tol=1e-9, abs_tol=0.0)
        except ValueError:
            return False
    return str(value).lower() == wanted.lower()


def _tokens(query: str) -> list[tuple[str, str, int]]:
    """``(kind, text, position)`` of each token; kind is op, punct, quoted, word or a keyword."""
    tokens, position = [], 0
    while position < len(query):
        match = TOKEN.match(query, position)
        if match is None or match.end() == position:
            if query[position:].strip() == "":
                break
            raise QueryError(query, f"cannot read {query[position:].strip()[:20]!r} (at character {position + 1})")
        kind = match.lastgroup or ""
        text, start = match.group(kind), match.start(kind)
        if kind == "quoted":
            text = text[1:-1]
        elif kind == "word" and text.lower() in WORDS:
            kind, text = text.lower(), text.lower()
        tokens.append((kind, text, start + 1))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens: or-expression of and-expressions of conditions."""

    def __init__(self, query: str) -> None:
        self.query, self.tokens, self.at = query, _tokens(query), 0

    def parse(self) -> Any:
        if not self.tokens:
            raise QueryError(self.query, 'is empty; e.g. "model=lenet and test_acc>0.98"')
        expression = self._any()
        if self.at < len(self.tokens):
            self._fail("expected and, or or the end")
        return expression

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self, *kinds: str, what: str) -> tuple[str, str, int]:
        token = self._peek()
        if token is None or token[0] not in kinds and token[1] not in kinds:
            self._fail(f"expected {what}")
        self.at += 1
        return token

    def _fail(self, expected: str) -> NoReturn:
        token = self._peek()
        where = f"{token[1]!r} (at character {token[2]})" if token else "the end"
        raise QueryError(self.query, f"{expected}, found {where}")

    def _any(self) -> Any:
        return self._joined("or", self._all, AnyOf)

    def _all(self) -> Any:
        return self._joined("and", self._one, AllOf)

    def _joined(self, word: str, part: Callable[[], Any], combine: Callable[[tuple], Any]) -> Any:
        """``part (word part)*``: one part as it is, several combined."""
        parts = [part()]
        while (token := self._peek()) is not None and token[0] == word:
            self.at += 1
            parts.append(part())
        return parts[0] if len(parts) == 1 else combine(tuple(parts))

    def _one(self) -> Any:
        token = self._peek()
        if token is not None and token[1] == "(":
            self.at += 1
            inner = self._any()
            self._take(")", what="')'")
            return inner
        key = self._take("word", what="a key (a config key, a metric, status or tags)")[1]
        op = self._take("op", "in", what=f"an operator after {key} (= != < <= > >= in)")[1]
        if op == "in":
            return Condition(key, op, self._list())
        value = self._take("word", "quoted", what=f"a value after {key}{op}")[1]
        if op in OPERATORS:
            try:
                float(value)
            except ValueError:
                raise QueryError(self.query, f"{key}{op}{value}: {op} needs a number") from None
        return Condition(key, op, (value,))

    def _list(self) -> tuple[str, ...]:
        self._take("[", what="'[' after in")
        values = [self._take("word", "quoted", what="a value")[1]]
        while (token := self._peek()) is not None and token[1] == ",":
            self.at += 1
            values.append(self._take("word", "quoted", what="a value after ','")[1])
        self._take("]", what="',' or ']'")
        return tuple(values)


def parse_query(query: str) -> Any:
    """The query as an object with ``matches(record)``, or a one-line :class:`QueryError`."""
    return _Parser(query).parse()


def conditions(expression: Any) -> list[Condition]:
    if isinstance(expression, Condition):
        return [expression]
    return [condition for part in expression.parts for condition in conditions(part)]


def refuse_unknown_keys(records: Sequence[RunRecord], keys: Sequence[str], option: str, given: str) -> None:
    """A key that no run has is a typo: refused in one line, with the closest names."""
    known = {"status", *LABELS} | {
        key for record in records for source in (record.hparams, record.results) for key in source
    }
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hint = (
                f"did you mean {' or '.join(close)}?"
                if close
                else "use a config key (optimizer.lr), a config group (model), a metric (test_acc), status or dataset"
            )
            raise ConfigError(option, given, f"no run has a value named {key!r}; {hint}")


def select(records: Sequence[RunRecord], query: str) -> list[RunRecord]:
    """The runs ``query`` keeps; a key that no run has is refused as a typo."""
    expression = parse_query(query)
    refuse_unknown_keys(records, [condition.key for condition in conditions(expression)], "--where", query)
    return [record for record in records if expression.matches(record)]
