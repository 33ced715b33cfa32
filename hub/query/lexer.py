# SPDX-License-Identifier: Apache-2.0
"""Query-option text -> tokens with their character positions (OData 4.0 URL conventions, §5.1.1).

Literals are converted here, so a bad date or duration is reported at its own
position: the token of `2021-05-15T10:15:20Z` carries an aware UTC datetime,
`duration'P1D'` a timedelta, `geography'POINT(1 2)'` its WKT text.
Words are not classified: whether `eq` is an operator or a property name
depends on where it stands, which only the parser knows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Literal

TokenKind = Literal[
    # literals (the same names as ast.ConstantKind)
    "string", "int", "float", "datetime", "date", "time", "duration", "geography",
    # words: names, keywords, dotted function names, `@iot.id`; `$filter` inside $expand
    "ident", "option",
    # punctuation, and the end of the text
    "(", ")", ",", "/", ":", ";", "=", "-", "end",
]  # fmt: skip


@dataclass(frozen=True)
class Token:
    """One token: its kind, its text as written, where it starts, and a literal's value."""

    kind: TokenKind
    text: str
    position: int
    value: object = None


class _Invalid(ValueError):
    """A literal with a value the client must change; the message says why."""


class LexError(ValueError):
    """Text that is no token; the parser turns it into a QueryError naming the option."""

    def __init__(self, position: int, detail: str) -> None:
        super().__init__(f"{detail} at position {position}")
        self.position = position
        self.detail = detail


# Alternatives are tried in order: a date-time before a date before a number.
# A date-time offset may arrive as a space: `+` in a form-encoded query means space.
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<datetime>[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?
        (?:[Zz]|[+-][0-9]{2}:?[0-9]{2}|\x20[0-9]{2}:[0-9]{2}(?![0-9:.]))?)
  | (?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})
  | (?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?)
  | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<option>\$\w+)
  | (?P<ident>(?:[^\W\d]|@)[\w.@-]*)
  | (?P<punct>[(),/:;=-])
  | (?P<quote>')
    """,
    re.VERBOSE,
)
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?"
    r"(?:([Zz])|([+ -])([0-9]{2}):?([0-9]{2}))?"
)
_TIME = re.compile(r"([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?")
_DURATION = re.compile(
    r"(-)?P(?:([0-9]+)Y)?(?:([0-9]+)M)?(?:([0-9]+)W)?(?:([0-9]+)D)?"
    r"(?:T(?=[0-9])(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+)(?:\.([0-9]+))?S)?)?",
    re.IGNORECASE,
)


def shorten(text: str, limit: int = 40) -> str:
    """`text`, cut to `limit` characters for an error message."""
    return text if len(text) <= limit else text[:limit] + "..."


def _micro(fraction: str | None) -> int:
    """Fractional-second digits -> microseconds (digits past the sixth are dropped)."""
    return int((fraction or "0")[:6].ljust(6, "0"))


def _to_datetime(text: str) -> datetime:
    """`2021-05-15T10:15:20.5+02:00` -> aware UTC datetime; an offset (or Z) is required."""
    m = _DATETIME.fullmatch(text)
    if m is None:  # pragma: no cover - the token pattern guarantees the shape
        raise ValueError(text)
    if m.group(8) is None and m.group(9) is None:
        # OData ABNF: dateTimeOffsetValue ends in "Z" or a sign and hh:mm; reading a local time
        # as UTC would silently shift every bound by the client's zone.
        raise _Invalid(
            f"date-time {shorten(text)!r} has no offset: write {shorten(text)}Z for UTC, "
            "or give its offset such as +01:00"
        )
    year, month, day, hour, minute = (int(g) for g in m.group(1, 2, 3, 4, 5))
    second, micro = int(m.group(6) or 0), _micro(m.group(7))
    offset = timedelta(0)
    if m.group(9) is not None:
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        offset = -offset if m.group(9) == "-" else offset
    zone = timezone(offset)
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone).astimezone(UTC)


def _to_time(text: str) -> time:
    m = _TIME.fullmatch(text)
    if m is None:  # pragma: no cover - the token pattern guarantees the shape
        raise ValueError(text)
    return time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0), _micro(m.group(4)))


def _to_duration(text: str) -> timedelta:
    """ISO 8601 `[-]PnDTnHnMnS` (weeks too) -> timedelta; years and months have no fixed length."""
    m = _DURATION.fullmatch(text.strip())
    if m is None or text.strip().upper() in {"P", "-P"}:
        raise _Invalid(f"invalid duration {shorten(text)!r}")
    sign, years, months, weeks, days, hours, minutes, seconds, fraction = m.groups()
    if int(years or 0) or int(months or 0):
        raise _Invalid(f"duration {shorten(text)!r} has years or months, which have no fixed length")
    value = timedelta(
        weeks=int(weeks or 0),
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=int(seconds or 0),
        microseconds=_micro(fraction),
    )
    return -value if sign else value


def _to_number(text: str) -> int | float:
    """`12` -> int; `1.5`, `1e3` -> float (finite)."""
    if not any(c in text for c in ".eE"):
        return int(text)
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Invalid(f"number {shorten(text)!r} is out of range")
    return value


# Literal token kind -> converter from the text as written (or the quoted text for typed literals).
_CONVERTERS: dict[TokenKind, Callable[[str], object]] = {
    "int": _to_number,  # the "number" group; a float is re-kinded by its value
    "datetime": _to_datetime,
    "date": date.fromisoformat,
    "time": _to_time,
    "duration": _to_duration,
    "geography": str,
    "string": str,
}
# Token-pattern group -> the token kind of its literal.
_LITERAL_GROUPS: dict[str, TokenKind] = {
    "datetime": "datetime",
    "date": "date",
    "time": "time",
    "number": "int",
}
_PUNCTUATION: dict[str, TokenKind] = {
    "(": "(", ")": ")", ",": ",", "/": "/", ":": ":", ";": ";", "=": "=", "-": "-",
}  # fmt: skip
# `prefix'...'` typed literals; geometry'...' is read as geography'...' (the value is the WKT text).
TYPED_PREFIXES: dict[str, TokenKind] = {
    "duration": "duration",
    "geography": "geography",
    "geometry": "geography",
}


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The content of the quoted string opening at `start` ('' stands for '), and the end."""
    parts, pos = [], start + 1
    while True:
        close = text.find("'", pos)
        if close < 0:
            raise LexError(start, "unterminated string")
        parts.append(text[pos:close])
        if not text.startswith("''", close):
            return "".join(parts), close + 1
        parts.append("'")
        pos = close + 2


def _convert(kind: TokenKind, source: str, text: str, position: int) -> Token:
    """A literal token with its value converted from `source`; a bad value is a LexError."""
    try:
        value = _CONVERTERS[kind](source)
    except _Invalid as error:
        raise LexError(position, str(error)) from None
    except (ValueError, OverflowError):  # out-of-range fields, too many digits for int()
        what = "number" if kind == "int" else kind
        raise LexError(position, f"invalid {what} {shorten(text)!r}") from None
    if isinstance(value, float):
        return Token("float", text, position, value)
    return Token(kind, text, position, value)


def _word(text: str, start: int, end: int) -> tuple[Token, int]:
    """An identifier, or a typed literal when a known prefix is directly followed by a quote."""
    word = text[start:end]
    kind = TYPED_PREFIXES.get(word.lower())
    if kind is None or not text.startswith("'", end):
        return Token("ident", word, start), end
    content, stop = _quoted(text, end)
    return _convert(kind, content, text[start:stop], start), stop


def _next(text: str, pos: int) -> tuple[Token | None, int]:
    """The token at `pos` (None for whitespace) and where the next one starts."""
    m = _TOKEN.match(text, pos)
    if m is None:
        raise LexError(pos, f"unexpected character {text[pos]!r}")
    group, word, end = m.lastgroup, m.group(), m.end()
    if group == "space":
        return None, end
    if group == "quote":
        content, stop = _quoted(text, pos)
        return Token("string", text[pos:stop], pos, content), stop
    if group == "ident":
        return _word(text, pos, end)
    if group == "option":
        return Token("option", word, pos), end
    if group == "punct":
        return Token(_PUNCTUATION[word], word, pos), end
    return _convert(_LITERAL_GROUPS[str(group)], word, word, pos), end


def tokenize(text: str) -> list[Token]:
    """All tokens of `text`, ending with an "end" token at len(text)."""
    tokens, pos = [], 0
    while pos < len(text):
        token, pos = _next(text, pos)
        if token is not None:
            tokens.append(token)
    tokens.append(Token("end", "", len(text)))
    return tokens
