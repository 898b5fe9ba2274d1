"""What a parameter may be, said once: each check also writes the words of its error message.

Modelled on scikit-learn's ``_parameter_constraints``: a parameter maps to a list of
constraints and is valid when it satisfies any of them. The message of a refused
value is derived from the same objects (``"must be null or an integer >= 8"``), so a
rule and its explanation can never drift apart.

Constraints come from two places:

* a class's own ``parameter_constraints`` mapping (the data modules, the models),
  kept next to the code that uses the value;
* the type hints of any callable a config instantiates (``int``, ``float``, ``bool``,
  ``str``, ``None``, ``Literal[...]`` and unions of them): :func:`signature_constraints`.

This module is plain Python: models and data modules use it without knowing of Hydra.
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
    """An integer that is not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


class Constraint:
    """One kind of value a parameter may take; ``str()`` describes it for error messages."""

    def is_satisfied_by(self, value: Any) -> bool:
        raise NotImplementedError


class Interval(Constraint):
    """A number (``Real``) or integer (``Integral``) between ``left`` and ``right`` (None: unbounded).

    ``closed`` says which ends belong to it: ``"both"``, ``"left"``, ``"right"`` or ``"neither"``.
    """

    def __init__(self, kind: type, left: float | None, right: float | None, closed: str = "both") -> None:
        if kind not in (Integral, Real):
            raise ValueError(f"Interval kind must be Integral or Real, not {kind!r}")
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def is_satisfied_by(self, value: Any) -> bool:
        if not (is_int(value) if self.kind is Integral else is_number(value)) or not math.isfinite(value):
            return False
        left_ok = self.left is None or (value >= self.left if self.closed in ("both", "left") else value > self.left)
        right_ok = self.right is None or (value <= self.right if self.closed in ("both", "right") else value < self.right)
        return left_ok and right_ok

    def __str__(self) -> str:
        noun = "an integer" if self.kind is Integral else "a number"
        includes_left, includes_right = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.left is not None and self.right is not None:
            return f"{noun} in {'[' if includes_left else '('}{self.left}, {self.right}{']' if includes_right else ')'}"
        if self.left is not None:
            return f"{noun} {'>=' if includes_left else '>'} {self.left}"
        if self.right is not None:
            return f"{noun} {'<=' if includes_right else '<'} {self.right}"
        return noun


class Options(Constraint):
    """One of a fixed set of values; ``label`` replaces the listing in messages (``"-1 for no limit"``)."""

    def __init__(self, values: Iterable[Any], label: str | None = None) -> None:
        self.values, self.label = tuple(values), label

    def is_satisfied_by(self, value: Any) -> bool:
        # True == 1 in Python: a bool only matches a bool
        return any(value == option and isinstance(value, bool) == isinstance(option, bool) for option in self.values)

    def __str__(self) -> str:
        if self.label:
            return self.label
        if len(self.values) == 1:
            return repr(self.values[0]) if isinstance(self.values[0], str) else str(self.values[0])
        return "one of " + ", ".join(str(v) for v in self.values)


class InstanceOf(Constraint):
    """A value of one Python type (bool counts as bool only, never as an int)."""

    NAMES = {bool: "true or false", str: "a string", int: "an integer", float: "a number", list: "a list",
             dict: "a mapping"}

    def __init__(self, kind: type) -> None:
        self.kind = kind

    def is_satisfied_by(self, value: Any) -> bool:
        if self.kind is bool:
            return isinstance(value, bool)
        if self.kind in (int, float):
            return (is_int if self.kind is int else is_number)(value)
        return isinstance(value, self.kind)

    def __str__(self) -> str:
        return self.NAMES.get(self.kind, f"a {self.kind.__name__}")


class Boolean(InstanceOf):
    def __init__(self) -> None:
        super().__init__(bool)


class NoneValue(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return value is None

    def __str__(self) -> str:
        return "null"


class Satisfies(Constraint):
    """Any other rule: a predicate and the words for the values it accepts."""

    def __init__(self, predicate: Callable[[Any], bool], label: str) -> None:
        self.predicate, self.label = predicate, label

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return bool(self.predicate(value))
        except (TypeError, ValueError):
            return False

    def __str__(self) -> str:
        return self.label


Constraints = Sequence[Constraint]


def describe(constraints: Constraints) -> str:
    """``"null or an integer >= 8"``: what the constraints accept, in words (all listed options as one list)."""
    options = [v for c in constraints if isinstance(c, Options) and not c.label for v in c.values]
    unique = list(dict.fromkeys(str(v) for v in options))
    words = [str(c) for c in constraints if not (isinstance(c, Options) and not c.label)]
    if unique:
        words.insert(0, str(Options(unique)))
    return " or ".join(words)


def satisfies(value: Any, constraints: Constraints) -> bool:
    return any(c.is_satisfied_by(value) for c in constraints)


def check_value(key: str, value: Any, constraints: Constraints) -> None:
    """Raise :class:`ConfigError` naming ``key`` unless ``value`` satisfies one of ``constraints``."""
    if constraints and not satisfies(value, constraints):
        raise ConfigError(key, value, f"must be {describe(constraints)}")


def check_params(params: Mapping[str, Any], constraints: Mapping[str, Constraints], prefix: str = "") -> None:
    """Check every parameter of ``params`` that ``constraints`` names (``prefix`` goes before the key)."""
    for name, rule in constraints.items():
        if name in params:
            check_value(f"{prefix}{name}", params[name], rule)


# --- constraints read off type hints -----------------------------------------------------------

_SIMPLE = {int: InstanceOf(int), float: InstanceOf(float), bool: InstanceOf(bool), str: InstanceOf(str)}


def constraints_of_type(hint: Any) -> list[Constraint] | None:
    """Constraints for a type hint, or None when the hint admits values no simple check describes
    (tensors, callables, nested containers...): such a parameter is left to its own code."""
    if hint is type(None) or hint is None:
        return [NoneValue()]
    if hint in _SIMPLE:
        return [_SIMPLE[hint]]
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return [Options(typing.get_args(hint))]
    if origin in (typing.Union, types.UnionType):
        merged: list[Constraint] = []
        for member in typing.get_args(hint):
            part = constraints_of_type(member)
            if part is None:
                return None
            merged += part
        return merged
    return None


def _hints(function: Callable) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 (hints naming types that cannot be resolved: check nothing)
        return {}


def signature_constraints(target: Callable) -> dict[str, list[Constraint]]:
    """Constraints for each parameter of ``target`` (a class or function) read off its type hints.

    For a class, the ``__init__`` hints of its bases count too (a subclass passing
    ``**kwargs`` on), the subclass's own winning.
    """
    functions = [klass.__init__ for klass in reversed(target.__mro__) if klass is not object] \
        if inspect.isclass(target) else [target]
    found = {}
    for function in functions:
        for name, hint in _hints(function).items():
            rule = constraints_of_type(hint) if name != "return" else None
            if rule is not None:
                found[name] = rule
    return found


def accepted_arguments(target: Callable) -> set[str] | None:
    """The keyword arguments ``target`` takes, or None when it takes any (``**kwargs`` to the end).

    A class whose ``__init__`` passes ``**kwargs`` to its base also takes the base's arguments.
    """
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
