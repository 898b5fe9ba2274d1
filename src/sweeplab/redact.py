"""The one redaction: what sweeplab writes down or prints of what it was given never holds a secret.

A password in a URL (``scheme://user:SECRET@host``), a token in a query string
(``?token=SECRET``), and any ``key=value`` argument or mapping key that looks like a
secret (``+db.password=x``, ``PGPASSWORD=x``, ``{"api_key": "x"}``) are masked as
:data:`MASK`. Every record, log, report and error line goes through
:func:`redact_text` (a string) or :func:`redact_data` (nested mappings and lists);
the values themselves are still used as given (only what is written is masked).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
SECRET_WORDS = (
    "password",
    "passwd",
    "pwd",
    "token",
    "secret",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "credentials",
)
_SECRET_NAME = "|".join(SECRET_WORDS)
# a key naming a secret: the word ends a dotted or underscored name (db.password, PGPASSWORD, aws_secret_access_key)
_KEY = re.compile(rf"(?:{_SECRET_NAME})$", re.IGNORECASE)
# credentials in a URL: scheme://user:SECRET@host (the secret runs to the last @ before the host's path)
_URL_CREDENTIALS = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)(?P<secret>[^\s/'\"]*)(?=@[^\s@/'\"]*(?:[/?#\s'\"]|$))"
)
# key=value and key: value pairs (an override, an environment variable, a query parameter, a YAML or JSON line)
_PAIR = re.compile(
    rf"(?P<key>[\w.+~\-]*(?:{_SECRET_NAME}))(?P<sep>\s*[=:]\s*|[\"']\s*:\s*)(?P<quote>[\"']?)(?P<value>[^\s&;,'\"}}\]\)]*)",
    re.IGNORECASE,
)


_KNOWN: set[str] = set()  # secrets this process was given (remember_secrets): masked wherever they show up
_KNOWN_MIN_LENGTH = 4  # shorter pieces are too likely to occur by chance


def remember_secrets(arguments: Iterable[str]) -> None:
    """Mask the secrets in ``arguments`` (a command line) verbatim from now on, wherever they show up: a library's
    error can echo part of one (a raw ``@`` in a URL's password makes its tail read as the host name)."""
    for argument in arguments:
        if not isinstance(argument, str):
            continue
        found = [m["secret"] for m in _URL_CREDENTIALS.finditer(argument)]
        found += [m["value"] for m in _PAIR.finditer(argument) if m["value"] != MASK]
        for secret in found:
            _KNOWN.update(piece for piece in (secret, *secret.split("@")) if len(piece) >= _KNOWN_MIN_LENGTH)


def is_secret_key(key: Any) -> bool:
    """Whether a mapping key or a config key (``db.password``, ``PGPASSWORD``, ``api_key``) names a secret."""
    return isinstance(key, str) and bool(_KEY.search(key.strip().lstrip("+~")))


def redact_text(text: str) -> str:
    """``text`` with credentials in URLs and the values of secret-looking ``key=value`` pairs masked."""
    if not isinstance(text, str) or not text:
        return text
    text = _URL_CREDENTIALS.sub(lambda m: m["head"] + (MASK if m["secret"] else ""), text)
    text = _PAIR.sub(_mask_pair, text)
    for secret in sorted(_KNOWN, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _mask_pair(match: re.Match[str]) -> str:
    if not match["value"] or match["value"] == MASK:
        return match[0]
    return f"{match['key']}{match['sep']}{match['quote']}{MASK}"


def redact_data(value: Any) -> Any:
    """A copy of ``value`` (mappings, lists, tuples, strings) with every secret masked: the values of
    secret-looking keys, and secrets inside strings (:func:`redact_text`)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            key: (MASK if is_secret_key(key) and item not in (None, "") else redact_data(item))
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(redact_data(item) for item in value)
    return value


class RedactingFilter(logging.Filter):
    """A log handler's filter that masks secrets in each record's message (arguments resolved first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))  # what is shown
        return True


def redact_log_handler(handler: logging.Handler) -> logging.Handler:
    """``handler`` with a :class:`RedactingFilter` (once); returns it."""
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(RedactingFilter())
    return handler
