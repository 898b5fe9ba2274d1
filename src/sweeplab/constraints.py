"""What a parameter may be, said once: each check also writes the words of its error message.

As scikit-learn's ``_parameter_constraints``: a value is valid when it satisfies any of its
constraints, and the refusal is worded from the same objects, so rule and message never drift
apart. Constraints come from a class's ``parameter_constraints`` or from type hints. Plain Python, no Hydra.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

from sweeplab.errors import ConfigError


def is_number(value: Any) -> bool:
    """A real number that is not a bool (YAML's true/false are ints to Python)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


class Constraint:
    """One kind of value a parameter may take: a test, and the words for it in an error message."""

    def __init__(self, accepts: Callable[[Any], bool], words: str, options: tuple[Any, ...] = ()) -> None:
        self.accepts, self.words, self.options = accepts, words, options  # options: merged into one listing

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return bool(self.accepts(value))
        except (TypeError, ValueError):
            return False

    def __str__(self) -> str:
        return self.words


class Interval(Constraint):
    """A number (``kind=Real``) or integer (``Integral``) from ``left`` to ``right`` (None: unbounded);
    ``closed``: the ends that belong to it (``both``, ``left``, ``right``, ``neither``)."""

    def __init__(self, kind: type, left: float | None, right: float | None, closed: str = "both") -> None:
        with_left, with_right = closed in ("both", "left"), closed in ("both", "right")
        is_kind = is_int if kind is Integral else is_number

        def accepts(v: Any) -> bool:
            return (
                is_kind(v)
                and math.isfinite(v)
                and (left is None or v > left or (with_left and v == left))
                and (right is None or v < right or (with_right and v == right))
            )

        noun = "an integer" if kind is Integral else "a number"
        if left is not None and right is not None:
            words = f"{noun} in {'[' if with_left else '('}{left}, {right}{']' if with_right else ')'}"
        elif left is not None or right is not None:
            words = (
                f"{noun} {'>' if left is not None else '<'}{'=' if (with_left, with_right)[left is None] else ''} "
                f"{left if left is not None else right}"
            )
        else:
            words = noun
        super().__init__(accepts, words)


class Options(Constraint):
    """One of a fixed set of values (a bool matches only a bool: True == 1 in Python); ``label``
    stands for the listing in messages (``-1 for no limit``)."""

    def __init__(self, values: Iterable[Any], label: str | None = None) -> None:
        values = tuple(values)
        words = label or (
            repr(values[0])
            if len(values) == 1 and isinstance(values[0], str)
            else "one of " + ", ".join(str(v) for v in values)
            if len(values) > 1
            else str(values[0])
        )
        super().__init__(
            lambda v: any(v == o and isinstance(v, bool) == isinstance(o, bool) for o in values),
            words,
            () if label else values,
        )


class Satisfies(Constraint):
    """Any other rule: a predicate and the words for the values it accepts."""


class Boolean(Constraint):
    def __init__(self) -> None:
        super().__init__(lambda v: isinstance(v, bool), "true or false")


class NoneValue(Constraint):
    def __init__(self) -> None:
        super().__init__(lambda v: v is None, "null")


Constraints = Sequence[Constraint]
ConstraintTree = Mapping[str, "Constraints | ConstraintTree"]  # a nested mapping of constraints checks a nested mapping


def describe(constraints: Constraints) -> str:
    """``"null or an integer >= 8"``: what the constraints accept, in words (all listed options as one list)."""
    options = list(dict.fromkeys(str(v) for c in constraints for v in c.options))
    words = [str(c) for c in constraints if not c.options]
    return " or ".join(([str(Options(options))] if options else []) + words)


def satisfies(value: Any, constraints: Constraints) -> bool:
    return any(c.is_satisfied_by(value) for c in constraints)


def check_value(key: str, value: Any, constraints: Constraints) -> None:
    """Raise :class:`ConfigError` naming ``key`` unless ``value`` satisfies one of ``constraints``."""
    if constraints and not satisfies(value, constraints):
        raise ConfigError(key, value, f"must be {describe(constraints)}")


def check_params(params: Mapping[str, Any], constraints: ConstraintTree, prefix: str = "") -> None:
    """Check every parameter of ``params`` that ``constraints`` names (``prefix`` goes before the key);
    a mapping of constraints checks a nested mapping, key by key (``data.augment.rotation``)."""
    for name, rule in constraints.items():
        if name not in params:
            continue
        if not isinstance(rule, Mapping):
            check_value(f"{prefix}{name}", params[name], rule)
        elif isinstance(params[name], Mapping):
            check_params(params[name], rule, prefix=f"{prefix}{name}.")
        else:
            raise ConfigError(f"{prefix}{name}", params[name], f"must be a mapping of {', '.join(rule)}")


_SIMPLE = {
    int: Constraint(is_int, "an integer"),
    float: Constraint(is_number, "a number"),
    bool: Boolean(),
    str: Constraint(lambda v: isinstance(v, str), "a string"),
}


def constraints_of_type(hint: Any) -> list[Constraint] | None:
    """Constraints for a type hint, or None when no simple check describes it (left to its own code)."""
    if hint is type(None) or hint is None:
        return [NoneValue()]
    if hint in _SIMPLE:
        return [_SIMPLE[hint]]
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return [Options(typing.get_args(hint))]
    if origin in (typing.Union, types.UnionType):
        parts = [constraints_of_type(member) for member in typing.get_args(hint)]
        return None if any(part is None for part in parts) else [c for part in parts if part is not None for c in part]
    return None


def _hints(function: Callable) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 (hints naming types that cannot be resolved: check nothing)
        return {}


def signature_constraints(target: Callable) -> dict[str, list[Constraint]]:
    """Constraints per parameter of ``target`` from its type hints; a class's bases' ``__init__`` count too."""
    # a class's __init__ is read for its hints, never called: mypy's "unsound" warning does not apply
    functions = (
        [klass.__init__ for klass in reversed(target.__mro__) if klass is not object]  # type: ignore[misc]
        if inspect.isclass(target)
        else [target]
    )
    found = {}
    for function in functions:
        for name, hint in _hints(function).items():
            rule = constraints_of_type(hint) if name != "return" else None
            if rule is not None:
                found[name] = rule
    return found


def accepted_arguments(target: Callable) -> set[str] | None:
    """The keyword arguments ``target`` takes (a base's too, through ``**kwargs``), or None when it takes any."""
    classes = [k for k in target.__mro__ if k is not object] if inspect.isclass(target) else [target]
    names: set[str] = set()
    for klass in classes:
        try:
            parameters = inspect.signature(klass.__init__ if inspect.isclass(klass) else klass).parameters
        except (TypeError, ValueError):
            return None
        names |= {n for n, p in parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            return names - {"self"}
    return None


def target_constraints(target: Callable) -> dict[str, list[Constraint]]:
    """The type-hint constraints of ``target``, refined by its own ``parameter_constraints``."""
    own = getattr(target, "parameter_constraints", None) or {}
    return {**signature_constraints(target), **own}
