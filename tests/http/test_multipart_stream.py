"""The incremental multipart parser (``microweb/http/multipart.py``), in memory: any split of the
body gives the same parts as the in-place parser, and what it holds between calls stays small."""
from __future__ import annotations

import os
import random

import pytest

from microweb.http.multipart import DATA, END, PART, MultipartError, MultipartParser
from microweb.multipart import parse_multipart

BOUNDARY = b"----b0und4ry"


def body(parts: list[tuple[bytes, bytes]], preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    out = [preamble]
    for i, (head, content) in enumerate(parts):
        out.append((b"\r\n" if i or preamble else b"") + b"--" + BOUNDARY + b"\r\n" + head + b"\r\n\r\n" + content)
    out.append(b"\r\n--" + BOUNDARY + b"--" + epilogue)
    return b"".join(out)


def parse_in_pieces(data: bytes, cuts: list[int]) -> list[tuple[bytes, bytes]]:
    parser = MultipartParser(BOUNDARY)
    parts: list[tuple[bytes, bytes]] = []
    current = b""
    head = b""
    start = 0
    for cut in [*cuts, len(data)]:
        for kind, value in parser.feed(data[start:cut]):
            if kind == PART:
                head, current = value or b"", b""
            elif kind == DATA:
                current += value or b""
            elif kind == END:
                parts.append((head, current))
        start = cut
    assert parser.done
    return parts


CONTENT = os.urandom(5000) + b"\r\n--" + BOUNDARY[:-1] + b"x\r\n\r\n--"  # near-delimiters inside
PARTS = [(b'Content-Disposition: form-data; name="a"', b"hello"),
         (b'Content-Disposition: form-data; name="f"; filename="x.bin"\r\nContent-Type: application/x',
          CONTENT),
         (b'Content-Disposition: form-data; name="empty"', b"")]


@pytest.mark.parametrize("seed", range(20))
def test_any_split_gives_the_same_parts(seed: int) -> None:
    data = body(PARTS, preamble=b"ignored preamble", epilogue=b"\r\nignored epilogue")
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 60))))
    assert parse_in_pieces(data, cuts) == PARTS


def test_byte_by_byte_agrees_with_the_in_place_parser() -> None:
    data = body(PARTS)
    assert parse_in_pieces(data, list(range(1, len(data)))) == PARTS
    fields, files = parse_multipart(data, "multipart/form-data; boundary=" + BOUNDARY.decode())
    assert fields["a"] == "hello" and files["f"].read() == CONTENT and fields["empty"] == ""


def test_what_is_held_between_calls_is_bounded() -> None:
    parser = MultipartParser(BOUNDARY)
    parser.feed(b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\n')
    for _ in range(200):
        events = parser.feed(os.urandom(65536))
        assert sum(len(v or b"") for k, v in events if k == DATA) > 60000
        assert len(parser._held) < len(parser.delimiter)  # a delimiter's length, never the part


@pytest.mark.parametrize("data, message", [
    (b"--" + BOUNDARY + b"\r\n" + b"X: y\r\n" * 3000, "header section too large"),
    (b"--" + BOUNDARY + b"junk\r\n", "not followed by CRLF"),
])
def test_malformed_bodies_raise(data: bytes, message: str) -> None:
    with pytest.raises(MultipartError, match=message):
        MultipartParser(BOUNDARY).feed(data)


def test_a_body_cut_before_the_closing_delimiter_is_not_done() -> None:
    parser = MultipartParser(BOUNDARY)
    parser.feed(body(PARTS)[:-10])
    assert not parser.done
