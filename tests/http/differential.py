"""Differential fuzzing support: one request, three parsers (microweb, h11, llhttp via httptools), one verdict each.

Theory of operation
-------------------
``requests()`` is a hypothesis strategy that writes requests from the RFC 9112
grammar (request line in all four target forms, field lines with optional
whitespace, Content-Length or chunked framing with chunk extensions and trailers)
and then mutates some of them the ways request smuggling and parser CVEs do:
whitespace where the grammar has none, case, CR/LF/NUL, duplicated and
conflicting framing fields, odd chunk lines, versions and targets, plus a few
random byte edits.

Each input is followed by a well-formed ``SENTINEL`` request and fed whole to
each parser. ``run_microweb``, ``run_h11`` and ``run_llhttp`` reduce what a parser
did to an ``Outcome``: accepted (with the first request's method, target,
version, header fields and body, and what came next: the sentinel, a closed
connection, or something else, which means the parsers disagree on where the
first request ends), rejected (with the parser's reason), or still waiting for
bytes.

``classify`` compares microweb's outcome with each of the others and names each
disagreement as ``(peer, microweb's verdict, how the peer differs)``.
``JUDGED`` lists every class seen so far with the RFC clause that decides it and
the reason microweb does what it does; ``docs/conformance.md`` is the same table
for readers. A key that no entry matches is a new class: the tests fail until it
is judged (fixed, or added here and to the docs).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import h11
import httptools
from hypothesis import strategies as st

from microweb.http.parser import Limits, RequestParser

SENTINEL = b"GET /__next__ HTTP/1.1\r\nHost: next\r\n\r\n"


@dataclass(frozen=True)
class Outcome:
    """What one parser made of one input."""

    kind: str  # "accept", "reject" or "incomplete"
    reason: str = ""  # for "reject": the parser's own message, normalized
    fields: tuple[Any, ...] = ()  # for "accept": method, target, version, headers, body
    next: str = ""  # for "accept": "sentinel", "closed" or "other"


def _version(v: str) -> str:
    """``1.1`` for every HTTP/1.x with x >= 1 (RFC 9110 2.5: served as the highest minor version known)."""
    if v.startswith("1.") and v != "1.0" and v[2:].isdigit():
        return "1.1"
    return v


# -- microweb --------------------------------------------------------------------------


def run_microweb(data: bytes) -> Outcome:
    parser = RequestParser(Limits())
    got = parser.receive(data)
    if not got:
        if parser.error is not None:
            return Outcome("reject", f"{parser.error.status} {parser.error.message}")
        return Outcome("incomplete")
    first = got[0]
    headers = tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in first.headers.items())
    fields = (first.method.encode("latin-1"), first.target.encode("latin-1"), first.http_version[5:], headers,
              bytes(first.body))
    if len(got) > 1:
        nxt = ("sentinel" if (got[1].method, got[1].target) == ("GET", "/__next__") and len(got) == 2
               and parser.error is None else "other")
    elif not first.keep_alive:
        nxt = "closed"
    else:
        nxt = "other"
    return Outcome("accept", fields=fields, next=nxt)


# -- h11 -------------------------------------------------------------------------------


def _h11_message(conn: h11.Connection) -> tuple[tuple[Any, ...] | str, bool]:
    """The next request and its body, and whether h11 paused after it (CONNECT, Upgrade);
    or "incomplete"/"paused" instead of the request. Raises RemoteProtocolError."""
    event = conn.next_event()
    if event is h11.NEED_DATA:
        return "incomplete", False
    if event is h11.PAUSED:
        return "paused", True
    assert isinstance(event, h11.Request), event
    body = b""
    paused = False
    while True:
        ev = conn.next_event()
        if ev is h11.NEED_DATA:
            return "incomplete", False
        if ev is h11.PAUSED:
            paused = True  # the rest of the connection is not HTTP for h11
            break
        if isinstance(ev, h11.Data):
            body += bytes(ev.data)
        elif isinstance(ev, h11.EndOfMessage):
            break
    headers = tuple((bytes(k), bytes(v)) for k, v in event.headers)
    return (bytes(event.method), bytes(event.target), _version(event.http_version.decode()), headers, body), paused


def _h11_reason(exc: Exception) -> str:
    return re.sub(r"\d+", "N", str(exc).split(":")[0].strip())


def run_h11(data: bytes) -> Outcome:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    try:
        first, paused = _h11_message(conn)
    except h11.RemoteProtocolError as exc:
        return Outcome("reject", _h11_reason(exc))
    if not isinstance(first, tuple):
        return Outcome("incomplete")
    if paused or conn.their_state is h11.MUST_CLOSE or conn.our_state is h11.MUST_CLOSE:
        return Outcome("accept", fields=first, next="closed")
    nxt = "other"
    try:
        conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
        conn.send(h11.EndOfMessage())
        ended = (h11.MUST_CLOSE, h11.SWITCHED_PROTOCOL)  # a 200 to CONNECT opens a tunnel for h11
        if conn.our_state in ended or conn.their_state in ended:
            nxt = "closed"
        else:
            conn.start_next_cycle()
            second, paused = _h11_message(conn)
            if isinstance(second, tuple) and second[:2] == (b"GET", b"/__next__"):
                nxt = "sentinel"
            elif paused:
                nxt = "closed"
    except (h11.RemoteProtocolError, h11.LocalProtocolError):
        nxt = "other"
    return Outcome("accept", fields=first, next=nxt)


# -- llhttp (httptools) ---------------------------------------------------------------


class _Collector:
    def __init__(self) -> None:
        self.parser: Any = None
        self.messages: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None

    def on_message_begin(self) -> None:
        self.current = {"url": b"", "headers": [], "body": b"", "head_done": False}

    def on_url(self, url: bytes) -> None:
        assert self.current is not None
        self.current["url"] += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        if not self.current["head_done"]:  # trailers are dropped, as microweb drops them
            self.current["headers"].append((name.lower(), value.strip(b" \t")))

    def on_headers_complete(self) -> None:
        assert self.current is not None
        self.current["head_done"] = True
        self.current["method"] = self.parser.get_method()
        self.current["version"] = self.parser.get_http_version()
        self.current["keep_alive"] = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        assert self.current is not None
        self.current["body"] += body

    def on_message_complete(self) -> None:
        assert self.current is not None
        self.messages.append(self.current)
        self.current = None


def run_llhttp(data: bytes) -> Outcome:
    collector = _Collector()
    parser = httptools.HttpRequestParser(collector)
    collector.parser = parser
    error = ""
    upgraded = False
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        upgraded = True
    except httptools.HttpParserError as exc:
        error = re.sub(r"\d+", "N", str(exc)) or type(exc).__name__
    messages = collector.messages
    if not messages:
        if error:
            return Outcome("reject", error)
        return Outcome("incomplete")
    first = messages[0]
    fields = (bytes(first["method"]), first["url"], _version(first["version"]), tuple(first["headers"]),
              first["body"])
    if len(messages) > 1:
        nxt = ("sentinel" if (messages[1]["method"], messages[1]["url"]) == (b"GET", b"/__next__")
               and len(messages) == 2 and not error else "other")
    elif upgraded or not first["keep_alive"]:
        nxt = "closed"
    else:
        nxt = "other"
    return Outcome("accept", fields=fields, next=nxt)


# -- comparing --------------------------------------------------------------------------

_FIELD_NAMES = ("method", "target", "version", "headers", "body")


def relation(mine: Outcome, theirs: Outcome) -> str | None:
    """How ``theirs`` differs from microweb's ``mine`` (None: no difference)."""
    if mine.kind != theirs.kind:
        if theirs.kind == "reject":
            return f"reject: {theirs.reason}"
        return theirs.kind
    if mine.kind != "accept":
        return None  # both refuse (statuses may differ) or both wait for more bytes
    differ = [name for name, a, b in zip(_FIELD_NAMES, mine.fields, theirs.fields) if a != b]
    if differ:
        return "accept, other " + "+".join(differ)
    if mine.fields[0] == b"CONNECT":
        return None  # what follows a CONNECT is a tunnel for whoever serves it (RFC 9110 9.3.6)
    if mine.next != theirs.next and "closed" not in (mine.next, theirs.next):
        return f"accept, then {theirs.next} (microweb: {mine.next})"
    return None


def microweb_label(mine: Outcome) -> str:
    return f"reject {mine.reason}" if mine.kind == "reject" else mine.kind


PEERS = ("h11", "llhttp")


def classify(data: bytes) -> tuple[list[tuple[str, str, str]], tuple[Outcome, Outcome, Outcome]]:
    """The disagreements of ``data``, one per peer that differs from microweb, as
    ``(peer, microweb's verdict, how the peer differs)``; and the three outcomes."""
    full = data + SENTINEL
    outcomes = (run_microweb(full), run_h11(full), run_llhttp(full))
    mine = outcomes[0]
    found = []
    connect = data.lstrip(b"\r\n").startswith(b"CONNECT ")
    for peer, theirs, run in zip(PEERS, outcomes[1:], (run_h11, run_llhttp)):
        rel = relation(mine, theirs)
        if rel is not None:
            if connect and peer == "llhttp" and theirs.kind == "accept":
                rel += " (CONNECT: the rest is a tunnel)"  # llhttp stops parsing after a CONNECT head
            elif rel.startswith("accept, then") and _only_line_ends_differ(data, run):
                rel += " (only CR/LF between the requests)"
            found.append((peer, microweb_label(mine), rel))
    return found, outcomes


def _only_line_ends_differ(data: bytes, run: Any) -> bool:
    """Whether dropping 1 to 4 trailing CR/LF bytes (between the request and the next one)
    makes microweb and the peer agree: the disagreement is about those bytes alone."""
    stray = len(data) - len(data.rstrip(b"\r\n"))
    for n in range(1, min(stray, 4) + 1):
        trimmed = data[:-n] + SENTINEL
        if relation(run_microweb(trimmed), run(trimmed)) is None:
            return True
    return False


def class_key(peer: str, mine: str, theirs: str) -> str:
    return f"{peer}: microweb {mine} / {peer} {theirs}"


# -- generating --------------------------------------------------------------------------

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
PCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@"
VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))
METHODS = ["GET", "GET", "GET", "POST", "POST", "PUT", "HEAD", "DELETE", "PATCH", "OPTIONS", "TRACE"]
NAMES = ["Accept", "User-Agent", "X-Custom", "Cookie", "Accept-Encoding", "Cache-Control", "X-Forwarded-For",
         "Content-Type", "Connection", "Expect", "Upgrade"]

tokens = st.text(TCHAR, min_size=1, max_size=8)
pchars = st.text(PCHAR, max_size=8)


@st.composite
def origin_form(draw: Any) -> str:
    segments = draw(st.lists(st.one_of(pchars, st.sampled_from(["%20", "%2F", "%e9", "a%zz"])), max_size=3))
    target = "/" + "/".join(segments)
    if draw(st.booleans()):
        target += "?" + draw(st.text(PCHAR + "/?", max_size=10))
    return target


@st.composite
def target_and_method(draw: Any) -> tuple[str, str]:
    form = draw(st.sampled_from(["origin"] * 6 + ["absolute", "authority", "asterisk"]))
    method = draw(st.sampled_from(METHODS + [draw(tokens)]))
    host = draw(st.sampled_from(["example.com", "a.b", "127.0.0.1", "[::1]", "x"]))
    if form == "origin":
        return method, draw(origin_form())
    if form == "absolute":
        scheme = draw(st.sampled_from(["http", "https", "HTTP"]))
        port = draw(st.sampled_from(["", ":8080", ":"]))
        return method, f"{scheme}://{host}{port}{draw(origin_form())}"
    if form == "authority":
        return draw(st.sampled_from(["CONNECT", "CONNECT", "CONNECT", method])), f"{host}:{draw(st.integers(1, 65535))}"
    return draw(st.sampled_from(["OPTIONS", "OPTIONS", method])), "*"


field_values = st.text(VCHAR + "  \t\x80\xe9", max_size=12).map(lambda v: v.strip(" \t"))


@st.composite
def chunked_body(draw: Any) -> tuple[bytes, list[bytes]]:
    """A chunked body, and the chunk-size lines' extensions as drawn (for mutating)."""
    out = b""
    pieces = draw(st.lists(st.binary(min_size=1, max_size=20), max_size=3))
    for piece in pieces:
        ext = draw(st.sampled_from(["", "", "", ";a", ";a=b", ';a="q d"', " ;a=b", ";a = b", ';a="\\""', ";a;b=1"]))
        size = draw(st.sampled_from(["%x", "%X", "0%x"])) % len(piece)
        out += size.encode() + ext.encode() + b"\r\n" + piece + b"\r\n"
    trailer = draw(st.sampled_from([b"", b"", b"X-Trailer: 1\r\n"]))
    return out + b"0\r\n" + trailer + b"\r\n", pieces


@st.composite
def well_formed(draw: Any) -> bytes:
    """A request from the RFC 9112 grammar (most of them valid, by construction)."""
    method, target = draw(target_and_method())
    version = draw(st.sampled_from(["HTTP/1.1"] * 8 + ["HTTP/1.0"]))
    fields: list[tuple[str, str]] = []
    if version == "HTTP/1.1" or draw(st.booleans()):
        fields.append(("Host", draw(st.sampled_from(["example.com", "localhost:8000", "127.0.0.1", "[::1]:80"]))))
    for _ in range(draw(st.integers(0, 3))):
        fields.append((draw(st.sampled_from(NAMES) | tokens), draw(field_values)))
    framing = draw(st.sampled_from(["none", "none", "length", "chunked"]))
    body = b""
    if framing == "length":
        body = draw(st.binary(max_size=20))
        fields.append(("Content-Length", str(len(body))))
    elif framing == "chunked":
        fields.append(("Transfer-Encoding", "chunked"))
        body, _ = draw(chunked_body())
    draw(st.randoms(use_true_random=False)).shuffle(fields)
    ows = draw(st.sampled_from(["", " ", " ", "\t", "  "]))
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}:{ows}{v}{draw(st.sampled_from(['', '', ' ']))}\r\n"
                                                          for k, v in fields) + "\r\n"
    return head.encode("latin-1") + body


# Structured mutations: each rewrites one part of a request the way smuggling and parser CVEs do.
_MUTATIONS: list[tuple[bytes, bytes]] = [
    (b"HTTP/1.1\r\n", b"HTTP/1.2\r\n"), (b"HTTP/1.1\r\n", b"HTTP/2.0\r\n"), (b"HTTP/1.1\r\n", b"HTTP/0.9\r\n"),
    (b"HTTP/1.1\r\n", b"http/1.1\r\n"), (b"HTTP/1.1\r\n", b"HTTP/1.1 \r\n"), (b"HTTP/1.1\r\n", b"HTTP/1.10\r\n"),
    (b"HTTP/1.1\r\n", b"HTTP/1.1\n"), (b" HTTP/", b"  HTTP/"), (b" HTTP/", b"\tHTTP/"),
    (b"Host:", b"Host :"), (b"Host:", b"host:"), (b"Host:", b"HOST:"), (b"Host: ", b"Host:\r\n "),
    (b"\r\n\r\n", b"\r\nHost: other\r\n\r\n"), (b"\r\n\r\n", b"\r\nX-Fold: a\r\n b\r\n\r\n"),
    (b"\r\n\r\n", b"\r\nX-A: 1\n\r\n"), (b"\r\n\r\n", b"\r\nX-A: a\rb\r\n\r\n"), (b"\r\n\r\n", b"\r\nX-A: a\x00b\r\n\r\n"),
    (b"\r\n\r\n", b"\r\nX-A:\x0bb\r\n\r\n"), (b"\r\n\r\n", b"\r\nX A: b\r\n\r\n"), (b"\r\n\r\n", b"\r\n: b\r\n\r\n"),
    (b"\r\n\r\n", b"\r\nContent-Length: 0\r\n\r\n"), (b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\n"),
    (b"\r\n\r\n", b"\r\nTransfer-Encoding: chunked\r\n\r\n"), (b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"),
    (b"\r\n\r\n", b"\r\nExpect: x\r\n\r\n"), (b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"),
    (b"\r\n\r\n", b"\r\nX-Long: " + b"v" * 9000 + b"\r\n\r\n"),
    (b"Content-Length: ", b"Content-Length: +"), (b"Content-Length: ", b"Content-Length: 0"),
    (b"Content-Length: ", b"Content-Length:  "), (b"Content-Length: 1", b"Content-Length: 1, 1"),
    (b"Content-Length: ", b"Content-Length: 1, "), (b"Content-Length: ", b"Content-Length: \xb2"),
    (b"Content-Length:", b"Content-Length : "), (b"Content-Length", b"Content_Length"),
    (b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked, chunked"),
    (b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked"),
    (b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked, gzip"),
    (b"Transfer-Encoding: chunked", b"Transfer-Encoding: identity"),
    (b"Transfer-Encoding: chunked", b"Transfer-Encoding: CHUNKED"),
    (b"Transfer-Encoding: chunked", b"Transfer-Encoding: xchunked"),
    (b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked\r\nContent-Length: 5"),
    (b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"),
    (b"Transfer-Encoding:", b"Transfer-Encoding:\x0b"), (b"Transfer-Encoding", b"Transfer-Encoding "),
    (b"\r\n0\r\n", b"\r\n0 \r\n"), (b"\r\n0\r\n", b"\r\n0\t\r\n"), (b"\r\n0\r\n", b"\r\n0;\r\n"),
    (b"\r\n0\r\n", b'\r\n0;a="b\r\n'), (b"\r\n0\r\n", b"\r\n0;a=\x01\r\n"), (b"\r\n0\r\n", b"\r\n0;a=b c\r\n"),
    (b"\r\n0\r\n", b"\r\n0;=b\r\n"), (b"\r\n0\r\n", b"\r\n0x0\r\n"), (b"\r\n0\r\n", b"\r\n 0\r\n"),
    (b"\r\n0\r\n", b"\r\n00000000000000000\r\n"), (b"\r\n0\r\n", b"\r\n0\n"), (b"\r\n0\r\n", b"\r\n0;a=b;\r\n"),
    (b"\r\n0\r\n", b"\r\n0 ;a\r\n"), (b"\r\n0\r\n\r\n", b"\r\n0\r\nX-T : 1\r\n\r\n"),
    (b"\r\n0\r\n\r\n", b"\r\n0\r\nContent-Length: 5\r\n\r\n"), (b"\r\n0\r\n\r\n", b"\r\n0\r\n"),
    (b" /", b" "), (b" /", b" *"), (b" /", b" foo/"), (b" /", b" //"), (b" /", b" http://u@h/"),
    (b" /", b" http:///"), (b" /", b" s://]x/:"), (b" /", b" /#frag"), (b" /", b" /a b"), (b" /", b" /\x7f"),
    (b" /", b" /\xe9"), (b" /", b" /%"), (b" /", b" /|{}^`\"<>\\"), (b"GET ", b"get "), (b"GET ", b"G(T "),
    (b"GET ", b" GET "), (b"POST ", b"POST  "), (b"CONNECT ", b"CONNECT /"),
]


@st.composite
def mutated(draw: Any) -> bytes:
    """A well-formed request, then one to three structured mutations and maybe a random byte edit."""
    data = draw(well_formed())
    for _ in range(draw(st.integers(1, 3))):
        applicable = [m for m in _MUTATIONS if m[0] in data]
        if not applicable:
            break
        old, new = draw(st.sampled_from(applicable))
        data = data.replace(old, new, 1)
    if draw(st.integers(0, 4)) == 0 and data:
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        if op == "flip":
            data = data[:i] + bytes([draw(st.sampled_from([0, 9, 10, 13, 32, 58, 59, 127, 255]))]) + data[i + 1:]
        elif op == "insert":
            data = data[:i] + draw(st.sampled_from([b"\r\n", b"\n", b"\r", b" ", b"\t", b"\x00", b";"])) + data[i:]
        else:
            data = data[:i] + data[i + draw(st.integers(1, 3)):]
    return data


def requests() -> Any:
    """The fuzzer's inputs: about a third straight from the grammar, the rest mutated."""
    return st.one_of(well_formed(), mutated(), mutated())
