"""Property-based fuzzing of the sans-IO parser (hypothesis).

Random and mutated requests, alone or pipelined, are fed whole and in random splits:
``receive`` must never raise (a ``ProtocolError`` is kept in ``parser.error``, nothing
else may escape), and every split must give the same requests, and the same verdict
(refused or not), as feeding the bytes whole.

The suite runs a short version (``MICROWEB_FUZZ_EXAMPLES``, default 200 per property).
A long run by hand:

    MICROWEB_FUZZ_EXAMPLES=50000 python3 -m pytest -q tests/test_fuzz.py -p no:cacheprovider
"""
from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microweb.http.parser import Limits, ProtocolError, RequestParser

EXAMPLES = int(os.environ.get("MICROWEB_FUZZ_EXAMPLES", "200"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                    database=None)
# Small limits so the fuzzer reaches every limit with short inputs.
LIMITS = dict(max_request_line=64, max_header_size=256, max_header_count=8, max_body_size=512)

TOKENS = ["GET", "POST", "HEAD", "PUT", "OPTIONS", "FOO", "get", "G(T", "", "GET "]
TARGETS = ["/", "/a?b=c", "*", "http://x/y", "/%00", "/a b", "/\x7f", "/é", "/" + "a" * 70]
VERSIONS = ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.10", "http/1.1", "HTTP/1.1 ", ""]
NAMES = ["Host", "Content-Length", "Transfer-Encoding", "Connection", "Expect", "X-A", "Host ", " X", "X:Y", "",
         "Content-Length ", "Transfer_Encoding", "X\x00"]
VALUES = ["x", "0", "5", "+5", "-1", "05", "5, 5", "5, 6", "chunked", "gzip, chunked", "chunked, chunked",
          "close", "keep-alive", "100-continue", "a\rb", "a\x00b", "", " x ", "\tx", "é", "a" * 300,
          "99999999999999999999"]
SEPARATORS = ["\r\n", "\r\n", "\r\n", "\n", "\r", "\r\n "]


@st.composite
def chunked_body(draw: Any) -> bytes:
    out = b""
    for piece in draw(st.lists(st.binary(min_size=1, max_size=40), max_size=4)):
        size = draw(st.sampled_from(["%x" % len(piece), "%X" % len(piece), "0%x" % len(piece),
                                     "%x;ext=1" % len(piece), "%x " % len(piece), "%x" % (len(piece) + 1),
                                     "0x%x" % len(piece), "+%x" % len(piece)]))
        out += size.encode() + draw(st.sampled_from([b"\r\n", b"\r\n", b"\n"])) + piece + b"\r\n"
    out += draw(st.sampled_from([b"0\r\n\r\n", b"0\r\n\r\n", b"0\r\nX-T: 1\r\n\r\n", b"0\r\nbad\r\n\r\n",
                                 b"0\n\n", b""]))
    return out


@st.composite
def request(draw: Any) -> bytes:
    sep = draw(st.sampled_from(SEPARATORS))
    line = f"{draw(st.sampled_from(TOKENS))} {draw(st.sampled_from(TARGETS))} {draw(st.sampled_from(VERSIONS))}"
    fields = [("Host", "x")] if draw(st.booleans()) else []
    fields += draw(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)), max_size=6))
    body = b""
    framing = draw(st.sampled_from(["none", "length", "chunked", "both"]))
    if framing in ("length", "both"):
        body = draw(st.binary(max_size=60))
        fields.append(("Content-Length", str(len(body) + draw(st.sampled_from([0, 0, 0, 1, -1])))))
    if framing in ("chunked", "both"):
        fields.append(("Transfer-Encoding", "chunked"))
        body = draw(chunked_body())
    draw(st.randoms()).shuffle(fields)
    head = line + "".join(f"{sep}{k}: {v}" for k, v in fields) + sep + sep
    return draw(st.sampled_from(["", "", "\r\n"])).encode() + head.encode("utf-8") + body


@st.composite
def mutated(draw: Any, base: Any) -> bytes:
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup"]))
        if op == "flip":
            data[i] = draw(st.sampled_from([0, 9, 10, 13, 32, 58, 127, 255, draw(st.integers(0, 255))]))
        elif op == "insert":
            data[i:i] = draw(st.sampled_from([b"\r\n", b"\n", b"\r", b" ", b":", b"\x00", b"0", b"chunked"]))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 4))]
        else:
            j = draw(st.integers(i, min(len(data), i + 20)))
            data[j:j] = data[i:j]
    return bytes(data)


def pipeline(strategy: Any) -> Any:
    return st.lists(strategy, min_size=1, max_size=3).map(b"".join)


def summary(parser: RequestParser, requests: list[Any]) -> tuple[Any, ...]:
    got = tuple(
        (r.method, r.target if hasattr(r, "target") else r.path, r.http_version, tuple(r.headers.items()), r.body,
         r.keep_alive)
        for r in requests
    )
    error = parser.error
    assert error is None or isinstance(error, ProtocolError)
    # Whether the input is refused is the same for every split; which status a request with
    # two faults gets may not be: the parser reports the first fault the bytes reveal (a bare
    # LF seen in a partial head is a 400 before a later 505 version could be judged).
    return got, error is not None


def feed(data: bytes, cuts: list[int], limits: Limits) -> tuple[Any, ...]:
    parser = RequestParser(limits)
    requests: list[Any] = []
    last = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        if cut > last:
            requests += parser.receive(data[last:cut])  # must not raise: errors are kept, not thrown
            last = cut
    requests += parser.receive(b"")
    return summary(parser, requests)


COUNT = {"inputs": 0}


def check(data: bytes, cuts: list[int], bytewise: bool) -> None:
    COUNT["inputs"] += 1
    for limits in (Limits(), Limits(**LIMITS)):
        whole = feed(data, [], limits)
        assert feed(data, [c % (len(data) + 1) for c in cuts], limits) == whole
        if bytewise and len(data) < 600:
            assert feed(data, list(range(len(data))), limits) == whole


@SETTINGS
@given(pipeline(request()), st.lists(st.integers(0, 2000), max_size=8), st.booleans())
def test_generated_requests_parse_the_same_whatever_the_split(data: bytes, cuts: list[int], bytewise: bool) -> None:
    check(data, cuts, bytewise)


@SETTINGS
@given(pipeline(mutated(request())), st.lists(st.integers(0, 2000), max_size=8), st.booleans())
def test_mutated_requests_parse_the_same_whatever_the_split(data: bytes, cuts: list[int], bytewise: bool) -> None:
    check(data, cuts, bytewise)


@SETTINGS
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=6))
def test_random_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    check(data, cuts, False)
    check(b"GET / HTTP/1.1\r\nHost: x\r\n" + data, cuts, False)


def test_zz_report_inputs(capsys: Any) -> None:
    """Prints how many inputs the properties above tried (for the closing note)."""
    with capsys.disabled():
        print(f"\nfuzz: {COUNT['inputs']} inputs tried, each fed whole and split under two sets of limits")
