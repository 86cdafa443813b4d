"""Header-value helpers: the grammar of field values, each parsed or formatted in one place.

Dates (IMF-fixdate), ``Accept``-style quality lists, ``Cookie``, parameters
(``type; a=b``), byte ranges, entity tags, ``Host``, and the names of a reverse
proxy's forwarding fields. Pure functions on ``str``; no I/O, like
``werkzeug.http``.
"""
from __future__ import annotations

import math
import re
import time
from email.utils import mktime_tz, parsedate_tz
from urllib.parse import unquote

__all__ = [
    "http_date", "parse_http_date", "parse_quality_list", "accepted_codings", "identity_acceptable",
    "parse_cookie_header", "parse_options_header", "parse_ranges", "coalesce_ranges", "parse_etags",
    "etag_matches_weak", "etag_matches_strong", "is_valid_host", "FORWARDING_FIELDS",
]

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(timestamp: float | None = None) -> str:
    """An IMF-fixdate (RFC 9110 5.6.7): ``Sun, 06 Nov 1994 08:49:37 GMT`` (now when no timestamp)."""
    t = time.gmtime(time.time() if timestamp is None else timestamp)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def parse_quality_list(value: str) -> list[tuple[str, float]]:
    """Parse an ``Accept``-style list: ``"a/b;q=0.5, c"`` -> ``[("a/b", 0.5), ("c", 1.0)]`` (lowercased).

    A weight is a qvalue (RFC 9110 12.4.2: 0 to 1, at most three decimals); anything else
    not finite or below 0 (``q=nan``, ``q=inf``, ``q=-1``, ``q=abc``) counts as 0 (refused), one
    above 1 as 1, and decimals past the third are rounded off.
    """
    items: list[tuple[str, float]] = []
    for item in value.lower().split(","):
        token, _, params = item.partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, number = param.strip().partition("=")
            if key.rstrip() == "q":
                q = _qvalue(number.strip())
        items.append((token.strip(), q))
    return items


def _qvalue(text: str) -> float:
    try:
        q = float(text)
    except ValueError:
        return 0.0
    if not math.isfinite(q) or q <= 0.0:
        return 0.0
    return 1.0 if q > 1.0 else round(q, 3)


def parse_cookie_header(header: str) -> dict[str, str]:
    """Parse a ``Cookie`` header: ``a=1; b="2"`` -> ``{"a": "1", "b": "2"}`` (first one wins)."""
    cookies: dict[str, str] = {}
    if not header:
        return cookies
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if not sep or not name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if "%" in value:
            value = unquote(value)
        cookies.setdefault(name.strip(), value)
    return cookies


def parse_options_header(value: str) -> tuple[str, dict[str, str]]:
    """``'form-data; name="a"; filename="b.txt"'`` -> ``("form-data", {"name": "a", "filename": "b.txt"})``.

    Quoted strings may contain ``;`` and backslash escapes; ``name*=UTF-8''...``
    (RFC 8187) is decoded and wins over the plain parameter.
    """
    media, _, rest = value.partition(";")
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t;":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            out = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(rest[i])
                i += 1
            i += 1
            val = "".join(out)
        else:
            end = rest.find(";", i)
            end = n if end < 0 else end
            val = rest[i:end].strip()
            i = end
        if key.endswith("*"):
            charset, _, encoded = val.partition("'")
            _, _, encoded = encoded.partition("'")
            try:
                extended[key[:-1]] = unquote(encoded, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError):
                pass
        elif key:
            params[key] = val
    params.update(extended)
    return media.strip().lower(), params


def parse_ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """``Range: bytes=...`` -> satisfiable (start, end) pairs, inclusive; [] unsatisfiable; None: ignore it.

    A header that is not a valid byte-range set is ignored (RFC 9110 14.2), as is one
    with more than 100 specs.
    """
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = spec.split(",")
    if len(specs) > 100:
        return None
    ranges: list[tuple[int, int]] = []
    seen = 0
    for item in specs:
        item = item.strip()
        if not item:
            continue
        first, dash, last = item.partition("-")
        first, last = first.strip(), last.strip()
        if not dash or len(first) > 19 or len(last) > 19:
            return None
        seen += 1
        # isdigit() alone accepts '\u00b2' (a latin-1 header byte 0xB2) and int() then raises.
        if not (first.isascii() and last.isascii()):
            return None
        if not first:
            if not last.isdigit():
                return None
            suffix = int(last)
            if suffix > 0 and size > 0:
                ranges.append((max(0, size - suffix), size - 1))
            continue
        if not first.isdigit() or (last and not last.isdigit()):
            return None
        start = int(first)
        end = int(last) if last else size - 1
        if last and end < start:
            return None
        if start < size:
            ranges.append((start, min(end, size - 1)))
    return ranges if seen else None


def coalesce_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted ranges with overlapping and adjacent ones merged."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def parse_http_date(value: str) -> int | None:
    """An HTTP date (IMF-fixdate, or the obsolete RFC 850 and asctime forms) as a Unix time; None if invalid."""
    parsed = parsedate_tz(value)
    if parsed is None:
        return None
    try:
        return mktime_tz(parsed)
    except (OverflowError, ValueError):
        return None


def parse_etags(value: str) -> list[str]:
    """The entity tags of an If-(None-)Match value (quoted strings may hold commas)."""
    return re.findall(r'(?:W/)?"[^"]*"|\*', value)


def etag_matches_weak(value: str, etag: str) -> bool:
    """If-None-Match: does any tag of ``value`` (or ``*``) weakly match ``etag`` (RFC 9110 8.8.3.2)."""
    if value.strip() == "*":
        return True
    bare = etag[2:] if etag.startswith("W/") else etag
    for tag in parse_etags(value):
        if (tag[2:] if tag.startswith("W/") else tag) == bare:
            return True
    return False


def etag_matches_strong(value: str, etag: str) -> bool:
    """If-Match: does any tag of ``value`` (or ``*``) strongly match ``etag``."""
    if value.strip() == "*":
        return True
    return any(tag == etag for tag in parse_etags(value) if not tag.startswith("W/"))



def accepted_codings(accept: str) -> tuple[str, ...]:
    """The content codings an ``Accept-Encoding`` value accepts (q > 0), ``*`` expanded."""
    accepted: set[str] = set()
    refused: set[str] = set()
    star = False
    for coding, q in parse_quality_list(accept):
        if q <= 0:
            refused.add(coding)
        elif coding == "*":
            star = True
        elif coding:
            accepted.add(coding)
    if star:
        accepted |= {"br", "gzip"} - refused
    return tuple(accepted - refused)


def identity_acceptable(accept: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows an uncoded body (RFC 9110 12.5.3): yes unless
    ``identity;q=0``, or ``*;q=0`` with no entry of its own for ``identity``."""
    star: float | None = None
    for coding, q in parse_quality_list(accept):
        if coding == "identity":
            return q > 0
        if coding == "*":
            star = q
    return star is None or star > 0


# RFC 9110 7.2: uri-host [ ":" port ]; reg-name (may be empty), or an IP literal in brackets.
_HOST = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+,;=%-]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?")


def is_valid_host(value: str) -> bool:
    """Whether ``value`` is a valid ``Host`` field value (an empty one is valid, RFC 9110 7.2)."""
    return _HOST.fullmatch(value) is not None


#: The fields a reverse proxy adds (applied only for trusted peers, see ``forwarded.py``).
FORWARDING_FIELDS = ("forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")
