"""Differential fuzzing: microweb's parser against h11 and llhttp (httptools), request by request.

The generator and the three runners are in ``differential.py``. Every disagreement
found is a class key; each must match a ``JUDGED`` entry (the RFC clause that
decides it, and what each parser does), mirrored in ``docs/conformance.md``. A new
class fails ``test_every_disagreement_is_judged`` (hypothesis then shrinks it to a
small example) until it is fixed or judged here.

The suite runs a fast version (``MICROWEB_DIFF_EXAMPLES``, default 400). The long
run, which counts every class, is a script:

    python3 tests/http/test_differential.py 200000      # exit status 1 on an unjudged class
"""
from __future__ import annotations

import collections
import os
import re
import sys
import time
from dataclasses import dataclass

import pytest

pytest.importorskip("h11")
pytest.importorskip("httptools")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

if __package__ in (None, ""):  # run as a script: make "differential" and microweb importable
    sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)),
                    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))]
from differential import class_key, classify, requests  # noqa: E402

EXAMPLES = int(os.environ.get("MICROWEB_DIFF_EXAMPLES", "400"))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass(frozen=True)
class Judged:
    """One disagreement class: the verdicts it covers, the rule that decides it, and an example.

    ``microweb`` is a regex over microweb's verdict (``accept``, ``incomplete`` or
    ``reject <status> <message>``); ``h11`` and ``llhttp`` are regexes over how that peer
    differs (``accept``, ``reject: <its message>``, ``accept, other <fields>``, ...), or
    None when the class is not about that peer.
    """

    id: str
    microweb: str
    h11: str | None
    llhttp: str | None
    rfc: str
    example: bytes

    def matches(self, peer: str, mine: str, theirs: str) -> bool:
        pattern = self.h11 if peer == "h11" else self.llhttp
        return (pattern is not None and re.fullmatch(self.microweb, mine, re.S) is not None
                and re.fullmatch(pattern, theirs, re.S) is not None)


H = b"Host: a\r\n"
CHUNKED = b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"

JUDGED: list[Judged] = [
    # -- chunk lines (RFC 9112 7.1, 7.1.1) ---------------------------------------------------------
    Judged("chunk-line-outside-grammar", r"reject 400 Invalid chunk size", r"accept", r"accept",
           "RFC 9112 7.1: chunk-size [ chunk-ext ] CRLF, chunk-ext = *( BWS \";\" BWS token "
           "[ BWS \"=\" BWS ( token / quoted-string ) ] )",
           CHUNKED + b"5 \r\nhello\r\n0\r\n\r\n"),
    Judged("chunk-ext-bws", r"accept", r"reject: illegal chunk header",
           r"reject: Invalid character in chunk (size|extensions|extensions name|extensions value)",
           "RFC 9112 7.1.1 and RFC 9110 5.6.3: a recipient MUST parse for BWS and remove it",
           CHUNKED + b"5 ;a = b\r\nhello\r\n0\r\n\r\n"),
    # -- request line -------------------------------------------------------------------------------
    Judged("target-form", r"reject 400 (Malformed request target|The asterisk-form target is only for OPTIONS"
                          r"|CONNECT needs an authority-form target \(host:port\))", r"accept",
           r"accept( \(CONNECT: the rest is a tunnel\))?",
           "RFC 9112 3.2: origin-form, absolute-form, authority-form (CONNECT only), asterisk-form (OPTIONS only); "
           "RFC 9110 4.2.1 and 4.2.4 (no empty host, no userinfo)",
           b"GET * HTTP/1.1\r\n" + H + b"\r\n"),
    Judged("http-major-version", r"reject 505 HTTP version not supported", r"accept", r"accept",
           "RFC 9110 2.5 and 15.6.6: 505 for a major version the server does not support",
           b"GET / HTTP/2.0\r\n" + H + b"\r\n"),
    Judged("http-minor-version", r"accept", None, r"reject: Invalid HTTP version",
           "RFC 9110 2.5: a higher minor version SHOULD be processed as the highest one implemented (1.1)",
           b"GET / HTTP/1.2\r\n" + H + b"\r\n"),
    Judged("extension-method", r"accept|incomplete", None, r"reject: Invalid method encountered",
           "RFC 9110 9.1 and 16.1: a method is any token; the application answers 501 for one it does not know",
           b"FOO / HTTP/1.1\r\n" + H + b"\r\n"),
    Judged("request-line-leniency", r"reject 400 (Malformed request line|Malformed method|Malformed HTTP version)",
           None, r"accept",
           "RFC 9112 3: one SP between the parts; lenient whitespace parsing can cause request smuggling",
           b"GET /  HTTP/1.1\r\n" + H + b"\r\n"),
    Judged("leading-empty-line", r"accept", r"reject: no request line received", None,
           "RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request-line",
           b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n"),
    Judged("line-ends-between-requests", r"accept",
           r"accept, then other \(microweb: sentinel\) \(only CR/LF between the requests\)",
           r"accept, then sentinel \(microweb: other\) \(only CR/LF between the requests\)",
           "RFC 9112 2.2: a server SHOULD ignore at least one empty line before a request-line (microweb "
           "ignores any number, h11 none); a bare CR MUST be treated as invalid (llhttp skips it)",
           b"GET / HTTP/1.1\r\n" + H + b"\r\n\r\n"),
    # -- line endings and field lines ------------------------------------------------------------------
    Judged("bare-lf", r"reject 400 (Bare CR or LF in header section|Bare LF in request head|Malformed request line"
                      r"|Malformed HTTP version|Malformed method|Invalid header line|Invalid trailer field"
                      r"|Bare LF in trailer section)", r"accept", None,
           "RFC 9112 2.2: a recipient MAY accept a bare LF as a line terminator; a bare CR MUST be rejected",
           b"GET / HTTP/1.1\nHost: a\n\n"),
    Judged("obs-fold", r"reject 400 Obsolete line folding is not allowed", r"accept", None,
           "RFC 9112 5.2: a server MUST either reject obs-fold with 400 or replace it with SP",
           b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n"),
    Judged("field-line-cap", r"reject 431 Header field line too long", r"accept", r"accept",
           "RFC 9110 5.4: a server MUST answer a field line larger than it wishes to process with a 4xx "
           "(431, RFC 6585 5)",
           b"GET / HTTP/1.1\r\n" + H + b"Cookie: " + b"c" * 9000 + b"\r\n\r\n"),
    Judged("host-field", r"reject 400 (More than one Host header|Invalid Host header|Missing Host header)",
           r"accept", r"accept",
           "RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request with no Host, more than one, or an "
           "invalid one (RFC 9110 7.2)",
           b"GET / HTTP/1.1\r\n" + H + b"Host: b\r\n\r\n"),
    Judged("expect", r"reject 417 Unsupported expectation", r"accept", r"accept",
           "RFC 9110 10.1.1: a server MAY answer 417 to an expectation other than 100-continue",
           b"GET / HTTP/1.1\r\n" + H + b"Expect: 200-ok\r\n\r\n"),
    # -- message framing (RFC 9112 6) --------------------------------------------------------------------
    Judged("te-in-http10", r"reject 400 Transfer-Encoding is not allowed in HTTP/1.0", r"accept", r"accept",
           "RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding MUST be treated as having faulty framing",
           b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    Judged("cl-and-te", r"reject 400 Both Content-Length and Transfer-Encoding", r"accept", None,
           "RFC 9112 6.3: a server MAY reject a request with both (it ought to be handled as an error)",
           CHUNKED.replace(b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\n") + b"0\r\n\r\n"),
    Judged("unknown-transfer-coding", r"reject 501 Unsupported transfer coding", None, r"accept",
           "RFC 9112 6.1: a server that receives a transfer coding it does not understand SHOULD answer 501",
           CHUNKED.replace(b"chunked", b"gzip, chunked") + b"0\r\n\r\n"),
    Judged("content-length-list", r"reject 400 Invalid Content-Length", r"accept", None,
           "RFC 9110 8.6: a list of identical values MAY be rejected or replaced by one value",
           b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1, 1\r\n\r\nx"),
    Judged("content-length-duplicates", r"accept", r"(reject: conflicting Content-Length headers"
                                                   r"|accept, other headers)", r"reject: Duplicate Content-Length",
           "RFC 9110 8.6: repeated fields with the same decimal value MAY be accepted as one",
           b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 01\r\n\r\nx"),
    Judged("framing-field-in-trailers", r"accept", r"reject: bad Content-Length",
           r"reject: Content-Length can't be present with Transfer-Encoding",
           "RFC 9110 6.5.1: trailer fields must not carry framing; microweb checks trailers and drops them",
           CHUNKED + b"0\r\nContent-Length: 5\r\n\r\n"),
    Judged("connect-body", r".*", None, r"accept.* \(CONNECT: the rest is a tunnel\)",
           "RFC 9110 9.3.6: CONNECT has no content; microweb, which serves no tunnel (501), keeps framing "
           "by Content-Length/Transfer-Encoding and stays in HTTP, as h11 does",
           b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\nContent-Length: 3\r\n\r\nabc"),
]


def judge(peer: str, mine: str, theirs: str) -> Judged | None:
    for entry in JUDGED:
        if entry.matches(peer, mine, theirs):
            return entry
    return None


SEEN: collections.Counter[str] = collections.Counter()
UNJUDGED: dict[str, bytes] = {}
COLLECT = False  # the long run collects every unjudged class instead of failing at the first


def check(data: bytes) -> None:
    found, outcomes = classify(data)
    SEEN["(inputs)"] += 1
    if not found:
        SEEN["(all three agree)"] += 1
    for peer, mine, theirs in found:
        entry = judge(peer, mine, theirs)
        if entry is not None:
            SEEN[f"{entry.id} ({peer})"] += 1
            continue
        key = class_key(peer, mine, theirs)
        SEEN["(unjudged) " + key] += 1
        UNJUDGED.setdefault(key, data)
        if not COLLECT:
            raise AssertionError(f"a new disagreement class: {key}\ninput: {data!r}\noutcomes: {outcomes}")


@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(requests())
def test_every_disagreement_is_judged(data: bytes) -> None:
    check(data)


@pytest.mark.parametrize("entry", JUDGED, ids=[e.id for e in JUDGED])
def test_each_judged_class_has_a_real_example(entry: Judged) -> None:
    """Each table row is reproduced by its example (so the table says what the parsers really do)."""
    found, outcomes = classify(entry.example)
    claimed = [judge(*item) for item in found]
    assert entry in claimed, (found, outcomes)


def test_conformance_doc_lists_every_class() -> None:
    with open(os.path.join(REPO, "docs", "conformance.md"), encoding="utf-8") as f:
        doc = f.read()
    for entry in JUDGED:
        assert f"`{entry.id}`" in doc, entry.id


def test_well_formed_requests_agree() -> None:
    """The control: plain requests every parser accepts the same way."""
    for data in (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                 b"POST /p?q HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nX-A:  b c \r\n\r\nabc",
                 b"PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\nT: 1\r\n\r\n",
                 b"GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
                 b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
                 b"GET / HTTP/1.0\r\n\r\n"):
        found, outcomes = classify(data)
        assert found == [], (found, outcomes)
        assert outcomes[0].kind == "accept"


def main(argv: list[str]) -> int:
    """The long run: ``python3 tests/http/test_differential.py [N]``; prints the count of every class."""
    global COLLECT
    COLLECT = True
    count = int(argv[1]) if len(argv) > 1 else 200_000
    started = time.monotonic()
    run = settings(max_examples=count, deadline=None, database=None, phases=[Phase.generate],
                   suppress_health_check=list(HealthCheck))(given(requests())(check))
    run()
    elapsed = time.monotonic() - started
    inputs = SEEN.pop("(inputs)", 0)
    agree = SEEN.pop("(all three agree)", 0)
    print(f"differential run: {inputs} generated requests in {elapsed:.0f} s; all three parsers agree on {agree}")
    print(f"{'count':>8}  class")
    for name, n in sorted(SEEN.items(), key=lambda item: (-item[1], item[0])):
        print(f"{n:>8}  {name}")
    for key, data in UNJUDGED.items():
        print(f"UNJUDGED {key}\n         e.g. {data!r}")
    return 1 if UNJUDGED else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
