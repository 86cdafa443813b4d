"""Header-value grammar (``microweb/http/values.py``): dates, quality lists, cookies, parameters, ranges,
entity tags, Host."""
from __future__ import annotations

import time

import pytest

from microweb.http.values import (
    FORWARDING_FIELDS, accepted_codings, coalesce_ranges, etag_matches_strong, etag_matches_weak, http_date,
    is_valid_host, parse_cookie_header, parse_etags, parse_http_date, parse_options_header, parse_quality_list,
    parse_ranges,
)

EXAMPLE = 784111777  # RFC 9110 5.6.7: Sun, 06 Nov 1994 08:49:37 GMT


# -- dates --------------------------------------------------------------------------------


def test_http_date_is_an_imf_fixdate() -> None:
    assert http_date(EXAMPLE) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert http_date(EXAMPLE + 0.999) == "Sun, 06 Nov 1994 08:49:37 GMT"  # seconds are truncated
    assert http_date(951782400) == "Tue, 29 Feb 2000 00:00:00 GMT"


def test_http_date_now() -> None:
    before = int(time.time())
    parsed = parse_http_date(http_date())
    assert parsed is not None
    assert before <= parsed <= time.time() + 1


@pytest.mark.parametrize("timestamp", [0, 1, 59, 86399, EXAMPLE, 951782400, 1700000000, 2147483647, 4102444800,
                                       1234567890])
def test_http_date_round_trip(timestamp: int) -> None:
    assert parse_http_date(http_date(timestamp)) == timestamp


@pytest.mark.parametrize("value", [
    "Sun, 06 Nov 1994 08:49:37 GMT",   # IMF-fixdate
    "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850 format
    "Sun Nov  6 08:49:37 1994",        # ANSI C's asctime() format
])
def test_parse_http_date_rfc9110_examples(value: str) -> None:
    assert parse_http_date(value) == EXAMPLE


def test_parse_http_date_asctime_is_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "EST+05")
    time.tzset()
    try:
        assert parse_http_date("Sun Nov  6 08:49:37 1994") == EXAMPLE
        assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == EXAMPLE
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("value", ["", "yesterday", "Sun, 06 Nov", "not a date at all, GMT", "Sun, 99 Foo 1994"])
def test_parse_http_date_invalid(value: str) -> None:
    assert parse_http_date(value) is None


# -- quality lists ----------------------------------------------------------------------


def test_parse_quality_list() -> None:
    assert parse_quality_list("a/b;q=0.5, c") == [("a/b", 0.5), ("c", 1.0)]
    assert parse_quality_list("Text/HTML; Q=0.8 ; level=1, */*;q=0") == [("text/html", 0.8), ("*/*", 0.0)]
    assert parse_quality_list("gzip;q=bogus") == [("gzip", 0.0)]  # an unreadable q refuses
    assert parse_quality_list("x; level=1") == [("x", 1.0)]
    assert parse_quality_list("a,,b") == [("a", 1.0), ("", 1.0), ("b", 1.0)]


@pytest.mark.parametrize("q, expected", [("nan", 0.0), ("NaN", 0.0), ("inf", 0.0), ("-inf", 0.0), ("infinity", 0.0),
                                         ("-1", 0.0), ("-0.5", 0.0), ("2", 1.0), ("1.5", 1.0), ("1e3", 1.0),
                                         ("0.5", 0.5), ("0.1234", 0.123), ("0", 0.0), ("1.000", 1.0)])
def test_parse_quality_list_qvalue_range(q: str, expected: float) -> None:
    """RFC 9110 12.4.2: a qvalue is 0 to 1 with up to three decimals; non-finite or negative refuses."""
    assert parse_quality_list(f"gzip;q={q}, br") == [("gzip", expected), ("br", 1.0)]


def test_nan_weight_does_not_accept_a_coding() -> None:
    """``q=nan`` compared false with 0 both ways, so ``gzip;q=nan`` counted as accepted."""
    assert accepted_codings("gzip;q=nan") == ()
    assert accepted_codings("gzip;q=inf, br") == ("br",)


@pytest.mark.parametrize("accept, codings", [
    ("gzip", {"gzip"}),
    ("gzip, br", {"gzip", "br"}),
    ("GZIP;q=0.5, deflate", {"gzip", "deflate"}),
    ("*", {"gzip", "br"}),
    ("*;q=0.1", {"gzip", "br"}),
    ("*, gzip;q=0", {"br"}),
    ("gzip;q=0, *", {"br"}),
    ("br;q=0, gzip;q=0, *", set()),
    ("*;q=0", set()),
    ("gzip;q=0", set()),
    ("gzip;q=0.0, gzip", set()),  # a refusal is not undone by a later mention
    ("identity", {"identity"}),
    ("", set()),
    (" , ", set()),
])
def test_accepted_codings(accept: str, codings: set[str]) -> None:
    result = accepted_codings(accept)
    assert isinstance(result, tuple)
    assert set(result) == codings
    assert len(result) == len(codings)


# -- cookies ------------------------------------------------------------------------------


def test_parse_cookie_header() -> None:
    assert parse_cookie_header("a=1; b=2") == {"a": "1", "b": "2"}
    assert parse_cookie_header('a="quoted value"; b="x"') == {"a": "quoted value", "b": "x"}
    assert parse_cookie_header("a=1; a=2") == {"a": "1"}  # first one wins
    assert parse_cookie_header("name=caf%C3%A9; sp=a%20b") == {"name": "caf\u00e9", "sp": "a b"}
    assert parse_cookie_header('q="%41%42"') == {"q": "AB"}
    assert parse_cookie_header("x=a=b") == {"x": "a=b"}
    assert parse_cookie_header("  spaced  =  v  ;") == {"spaced": "v"}
    assert parse_cookie_header("empty=") == {"empty": ""}
    assert parse_cookie_header('one="') == {"one": '"'}  # a lone quote is not a quoted string


def test_parse_cookie_header_skips_junk() -> None:
    assert parse_cookie_header("") == {}
    assert parse_cookie_header("novalue; =nameless; ok=1;;") == {"ok": "1"}
    assert parse_cookie_header("bad=%zz") == {"bad": "%zz"}  # an invalid escape is kept as it is


# -- parameters ------------------------------------------------------------------------


def test_parse_options_header_basic() -> None:
    assert parse_options_header('form-data; name="a"; filename="b.txt"') == (
        "form-data", {"name": "a", "filename": "b.txt"})
    assert parse_options_header("Text/HTML; Charset=UTF-8") == ("text/html", {"charset": "UTF-8"})
    assert parse_options_header("text/plain") == ("text/plain", {})
    assert parse_options_header("") == ("", {})
    assert parse_options_header("multipart/form-data;boundary=----xyz") == (
        "multipart/form-data", {"boundary": "----xyz"})


def test_parse_options_header_quoted_strings() -> None:
    media, params = parse_options_header('attachment; filename="a; b=c.txt"; size=3')
    assert media == "attachment"
    assert params == {"filename": "a; b=c.txt", "size": "3"}
    _, params = parse_options_header(r'form-data; name="say \"hi\""; other="back\\slash"')
    assert params == {"name": 'say "hi"', "other": "back\\slash"}
    _, params = parse_options_header('form-data; name = "spaced" ; x= y ')
    assert params == {"name": "spaced", "x": "y"}
    _, params = parse_options_header('form-data; name="unterminated')
    assert params == {"name": "unterminated"}


def test_parse_options_header_rfc8187_wins() -> None:
    value = "attachment; filename*=UTF-8''%E2%82%AC%20rates.txt; filename=\"EUR rates.txt\""
    assert parse_options_header(value) == ("attachment", {"filename": "\u20ac rates.txt"})
    # whichever comes first
    value = "attachment; filename=\"EUR rates.txt\"; filename*=utf-8'en'%E2%82%AC%20rates.txt"
    assert parse_options_header(value)[1] == {"filename": "\u20ac rates.txt"}
    assert parse_options_header("attachment; filename*=iso-8859-1''%A3")[1] == {"filename": "\u00a3"}


def test_parse_options_header_bad_rfc8187_falls_back() -> None:
    value = "attachment; filename=\"plain.txt\"; filename*=no-such-charset''%41bc"
    assert parse_options_header(value)[1] == {"filename": "plain.txt"}
    value = "attachment; filename=\"plain.txt\"; filename*=UTF-8''%FF%FE"
    assert parse_options_header(value)[1] == {"filename": "plain.txt"}


# -- ranges -------------------------------------------------------------------------------


@pytest.mark.parametrize("header, size, expected", [
    ("bytes=0-499", 1000, [(0, 499)]),
    ("bytes=500-999", 1000, [(500, 999)]),
    ("bytes=500-", 1000, [(500, 999)]),           # open-ended
    ("bytes=-200", 1000, [(800, 999)]),           # suffix
    ("bytes=-2000", 1000, [(0, 999)]),            # suffix longer than the file
    ("bytes=0-0", 1000, [(0, 0)]),
    ("bytes=900-5000", 1000, [(900, 999)]),       # end clipped
    ("bytes=0-1, 5-6", 10, [(0, 1), (5, 6)]),
    ("bytes=0-1,,5-6", 10, [(0, 1), (5, 6)]),     # empty elements are skipped
    ("Bytes = 1-2", 10, [(1, 2)]),
    ("bytes=5-7, 20-30", 10, [(5, 7)]),           # the unsatisfiable one is dropped
    ("bytes=1000-", 1000, []),                    # unsatisfiable
    ("bytes=1000-2000", 1000, []),
    ("bytes=-0", 1000, []),                       # an empty suffix
    ("bytes=0-", 0, []),                          # nothing of an empty file
    ("bytes=-5", 0, []),
])
def test_parse_ranges(header: str, size: int, expected: list[tuple[int, int]]) -> None:
    assert parse_ranges(header, size) == expected


@pytest.mark.parametrize("header", [
    "", "bytes", "0-1", "items=0-1", "bytes=", "bytes=,", "bytes=abc", "bytes=5", "bytes=5-2", "bytes=-",
    "bytes=1-2-3", "bytes=a-2", "bytes=1-b", "bytes=-x", "bytes=0-1, x", "bytes=+1-2",
    "bytes=" + "9" * 20 + "-",  # too many digits
    "bytes=0-" + "9" * 20,
])
def test_parse_ranges_invalid_is_ignored(header: str) -> None:
    assert parse_ranges(header, 1000) is None


def test_parse_ranges_spec_count_limit() -> None:
    hundred = "bytes=" + ",".join(f"{i}-{i}" for i in range(100))
    assert parse_ranges(hundred, 1000) == [(i, i) for i in range(100)]
    assert parse_ranges(hundred + ",100-100", 1000) is None


def test_parse_ranges_big_numbers() -> None:
    big = "9" * 19
    assert parse_ranges(f"bytes=0-{big}", 10) == [(0, 9)]
    assert parse_ranges(f"bytes={big}-", 10) == []


@pytest.mark.parametrize("header", ["bytes=\u00b2-", "bytes=0-\u00b3", "bytes=-\u00b9"])
def test_parse_ranges_non_ascii_digits_are_invalid(header: str) -> None:
    assert parse_ranges(header, 1000) is None


def test_coalesce_ranges() -> None:
    assert coalesce_ranges([]) == []
    assert coalesce_ranges([(5, 9)]) == [(5, 9)]
    assert coalesce_ranges([(5, 9), (0, 2)]) == [(0, 2), (5, 9)]            # sorted
    assert coalesce_ranges([(0, 5), (3, 8)]) == [(0, 8)]                    # overlapping
    assert coalesce_ranges([(0, 4), (5, 9)]) == [(0, 9)]                    # adjacent
    assert coalesce_ranges([(0, 3), (5, 9)]) == [(0, 3), (5, 9)]            # a gap of one byte
    assert coalesce_ranges([(0, 100), (10, 20), (30, 40)]) == [(0, 100)]    # contained
    assert coalesce_ranges([(7, 7), (6, 6), (5, 5), (20, 30)]) == [(5, 7), (20, 30)]


# -- entity tags ----------------------------------------------------------------------------


def test_parse_etags() -> None:
    assert parse_etags('"a", W/"b", "c,d"') == ['"a"', 'W/"b"', '"c,d"']
    assert parse_etags("*") == ["*"]
    assert parse_etags('""') == ['""']
    assert parse_etags("no tags here") == []


def test_etag_matches_weak() -> None:
    assert etag_matches_weak('"a"', '"a"')
    assert etag_matches_weak('W/"a"', '"a"')
    assert etag_matches_weak('"a"', 'W/"a"')
    assert etag_matches_weak('W/"a"', 'W/"a"')
    assert etag_matches_weak('"x", "y", W/"a"', '"a"')
    assert etag_matches_weak("*", '"anything"')
    assert etag_matches_weak(" * ", '"anything"')
    assert not etag_matches_weak('"b"', '"a"')
    assert not etag_matches_weak('"A"', '"a"')  # case matters
    assert not etag_matches_weak("", '"a"')


def test_etag_matches_strong() -> None:
    assert etag_matches_strong('"a"', '"a"')
    assert etag_matches_strong('"x", "a"', '"a"')
    assert etag_matches_strong("*", '"a"')
    assert not etag_matches_strong('W/"a"', '"a"')     # a weak tag never matches strongly
    assert not etag_matches_strong('"a"', 'W/"a"')
    assert not etag_matches_strong('W/"a"', 'W/"a"')
    assert not etag_matches_strong('"b"', '"a"')
    assert not etag_matches_strong("", '"a"')


# -- Host -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "example.com", "example.com:8080", "localhost:", "127.0.0.1",
                                   "127.0.0.1:80", "[::1]", "[::1]:8000", "[2001:db8::1]",
                                   "[::ffff:192.0.2.1]:443", "xn--nxasmq6b.example", "my_host.local", "a%20b"])
def test_valid_hosts(value: str) -> None:
    assert is_valid_host(value)


@pytest.mark.parametrize("value", ["exa mple.com", " example.com", "example.com/path", "a\\b", "host:port",
                                   "host:80:80", "[::1", "::1", "[zz::1]", "[::1]x", "user@host", "host\t",
                                   "caf\u00e9.example", "example.com:80 "])
def test_invalid_hosts(value: str) -> None:
    assert not is_valid_host(value)


def test_forwarding_fields_are_lowercase_names() -> None:
    assert set(FORWARDING_FIELDS) == {"forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}
