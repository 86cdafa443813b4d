"""multipart/form-data: parsing, limits, malformed bodies (in memory and on a live server)."""
from __future__ import annotations

import io
import os

import httpx
import pytest

from microweb import App, HTTPError
from microweb.http.values import parse_options_header
from microweb.multipart import FormLimits, UploadedFile, parse_multipart
from tests.conftest import read_response

CT = "multipart/form-data; boundary=XyZ"


def body(*parts: bytes, boundary: bytes = b"XyZ", close: bool = True) -> bytes:
    out = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
    return out + (b"--" + boundary + b"--\r\n" if close else b"")


def field(name: str, value: bytes) -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value


def file_part(name: str, filename: str, data: bytes, ctype: str = "application/octet-stream") -> bytes:
    return (f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n").encode() + data


def test_fields_and_files() -> None:
    data = bytes(range(256)) * 10 + b"\r\n--XyY almost a boundary\r\n--"
    raw = body(field("a", b"1"), field("a", "é".encode()), field("empty", b""),
               file_part("doc", "notes.bin", data), file_part("doc", "two.txt", b"2", "text/plain"))
    fields, files = parse_multipart(raw, CT)
    assert fields["a"] == "1" and fields.getlist("a") == ["1", "é"] and fields["empty"] == ""
    first, second = files.getlist("doc")
    assert isinstance(first, UploadedFile)
    assert (first.filename, first.content_type, first.size) == ("notes.bin", "application/octet-stream", len(data))
    assert first.read() == data and first.read() == b""
    first.seek(0)
    assert first.read(3) == b"\x00\x01\x02" and first.tell() == 3
    assert (second.filename, second.content_type, second.read()) == ("two.txt", "text/plain", b"2")
    second.seek(0)
    assert second.stream.read() == b"2" and second.mimetype == "text/plain"


def test_file_data_is_a_view_of_the_body_not_a_copy() -> None:
    payload = os.urandom(1 << 20)
    raw = body(file_part("f", "big.bin", payload))
    _, files = parse_multipart(raw, CT)
    view = files["f"]._data
    assert isinstance(view, memoryview) and view.obj is raw  # no copy until read()/save()


def test_parsing_a_big_upload_allocates_almost_nothing() -> None:
    import tracemalloc

    payload = os.urandom(8 * 1024 * 1024)
    raw = body(field("title", b"x"), file_part("f", "big.bin", payload))
    tracemalloc.start()
    try:
        _, files = parse_multipart(raw, CT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert files["f"].size == len(payload)
    assert peak < 256 * 1024, peak  # the 8 MiB file is never copied while parsing


def test_save_to_path_and_file_object(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, files = parse_multipart(body(file_part("f", "x.txt", b"hello")), CT)
    assert files["f"].save(tmp_path / "out.txt") == 5
    assert (tmp_path / "out.txt").read_bytes() == b"hello"
    buf = io.BytesIO()
    files["f"].save(buf)
    assert buf.getvalue() == b"hello"


def test_preamble_epilogue_quoting_and_paths() -> None:
    raw = (b"preamble text\r\n" + body(
        b'Content-Disposition: form-data; name="a;b"; filename="C:\\\\Users\\\\me\\\\r\\"x.txt"\r\n\r\ndata',
        b"Content-Disposition: form-data; name=plain\r\n\r\nv",
        b"Content-Disposition: form-data; name=\"f\"; filename=\"x\"; filename*=UTF-8''%C3%A9t%C3%A9.txt\r\n\r\n!",
    ) + b"epilogue")
    fields, files = parse_multipart(raw, 'multipart/form-data; boundary="XyZ"')
    assert files["a;b"].filename == 'r"x.txt'  # directory part of a Windows path dropped
    assert fields["plain"] == "v"
    assert files["f"].filename == "été.txt"


def test_parse_options_header() -> None:
    assert parse_options_header('Form-Data; name="a"; filename="b c.txt"') == (
        "form-data", {"name": "a", "filename": "b c.txt"})
    assert parse_options_header("text/plain;charset=latin-1") == ("text/plain", {"charset": "latin-1"})


def test_field_charset() -> None:
    raw = body(b'Content-Disposition: form-data; name="t"\r\nContent-Type: text/plain; charset=latin-1\r\n\r\n\xe9')
    assert parse_multipart(raw, CT)[0]["t"] == "é"


@pytest.mark.parametrize("raw,content_type,message", [
    (b"", "multipart/form-data", "boundary"),
    (body(field("a", b"1")), "multipart/form-data; boundary=", "boundary"),
    (b"no boundary here at all", CT, "no boundary line"),
    (body(field("a", b"1"), close=False)[:-2], CT, "closing boundary"),
    (b"--XyZ\r\n" + field("a", b"1"), CT, "closing boundary"),
    (b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n", CT, "not terminated"),
    (body(b"Content-Type: text/plain\r\n\r\nx"), CT, "Content-Disposition"),
    (body(b'Content-Disposition: attachment; name="a"\r\n\r\nx'), CT, "Content-Disposition"),
    (body(b"Content-Disposition form-data\r\n\r\nx"), CT, "header line"),
    (b"--XyZjunk\r\n" + field("a", b"1") + b"\r\n--XyZ--", CT, "CRLF"),
    (body(field("a", b"\xff\xfe")), CT, "not valid utf-8"),
    (b"--XyZ\r\n" + b"X-Long: " + b"a" * 10000 + b"\r\n\r\nx\r\n--XyZ--", CT, "too large"),
])
def test_malformed_is_400(raw: bytes, content_type: str, message: str) -> None:
    with pytest.raises(HTTPError) as info:
        parse_multipart(raw, content_type)
    assert info.value.status == 400
    assert message.lower() in str(info.value.description).lower()


def test_limits_are_413() -> None:
    limits = FormLimits(max_parts=3, max_fields=2, max_field_size=10, max_file_size=100)
    ok = body(field("a", b"1"), field("b", b"0123456789"), file_part("f", "f", b"x" * 100))
    parse_multipart(ok, CT, limits)
    cases = {
        "Too many parts": body(*[file_part("f", "f", b"")] * 4),
        "Too many form fields": body(field("a", b""), field("b", b""), field("c", b"")),
        "'b' is too large": body(field("b", b"01234567890")),
        "'f' is too large": body(file_part("f", "f", b"x" * 101)),
    }
    for message, raw in cases.items():
        with pytest.raises(HTTPError) as info:
            parse_multipart(raw, CT, limits)
        assert info.value.status == 413 and message in str(info.value.description), message


def upload_app() -> App:
    app = App()
    app.form_limits = FormLimits(max_parts=5, max_fields=5, max_field_size=1000, max_file_size=64 * 1024)

    @app.post("/upload")
    def upload(request):  # type: ignore[no-untyped-def]
        f = request.files.get("file")
        return {"fields": {k: request.form.getlist(k) for k in request.form},
                "file": None if f is None else [f.filename, f.content_type, f.size, f.read().hex()[:16]]}

    @app.get("/")
    def index(request):  # type: ignore[no-untyped-def]
        return "alive"

    return app


def test_request_form_and_files_via_test_client() -> None:
    c = upload_app().test_client()
    r = c.post("/upload", data={"a": ["1", "2"], "b": "x"}, files={"file": ("r.bin", b"\x00\x01", "image/png")})
    assert r.json() == {"fields": {"a": ["1", "2"], "b": ["x"]}, "file": ["r.bin", "image/png", 2, "0001"]}
    r = c.post("/upload", data={"a": "1"})  # urlencoded
    assert r.json() == {"fields": {"a": ["1"]}, "file": None}
    r = c.post("/upload", files={"file": ("big", b"x" * (64 * 1024 + 1))}, headers={"accept": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["description"]


def test_urlencoded_field_count_limit() -> None:
    c = upload_app().test_client()
    r = c.post("/upload", content=b"&".join(b"k%d=v" % i for i in range(6)),
               headers={"content-type": "application/x-www-form-urlencoded", "accept": "application/json"})
    assert r.status_code == 413 and r.json()["description"] == "Too many form fields (limit 5)"


def test_live_server_malformed_and_oversized_keep_connection(live_server) -> None:  # type: ignore[no-untyped-def]
    server = live_server(upload_app())
    sock = server.connect()
    try:
        def send(body_bytes: bytes, ctype: str = CT) -> tuple[bytes, bytes]:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: "
                         + ctype.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body_bytes) + body_bytes)
            return read_response(sock)

        head, payload = send(b"--XyZ\r\nbroken")
        assert head.startswith(b"HTTP/1.1 400 ") and b"Malformed multipart body" in payload
        head, payload = send(body(file_part("file", "a", b"y" * (64 * 1024 + 1))))
        assert head.startswith(b"HTTP/1.1 413 ") and b"too large" in payload
        head, payload = send(body(*[field(f"f{i}", b"") for i in range(6)]))
        assert head.startswith(b"HTTP/1.1 413 ") and b"Too many" in payload
        # Same connection, still usable:
        head, payload = send(body(file_part("file", "ok.txt", b"fine", "text/plain")))
        assert head.startswith(b"HTTP/1.1 200 ") and b'"ok.txt"' in payload
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[1] == b"alive"
    finally:
        sock.close()
    # And the server serves others, through a real client.
    with httpx.Client(base_url=server.url) as client:
        big = os.urandom(60 * 1024)
        r = client.post("/upload", files={"file": ("b.bin", big)})
        assert r.json()["file"][:3] == ["b.bin", "application/octet-stream", len(big)]


@pytest.mark.slow
def test_live_server_large_upload(live_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A 12 MiB upload goes through and is saved intact (the default limits allow 16 MiB)."""
    app = App()
    target = tmp_path / "saved.bin"

    @app.post("/up")
    def up(request):  # type: ignore[no-untyped-def]
        return {"saved": request.files["f"].save(target)}

    server = live_server(app)
    payload = os.urandom(12 * 1024 * 1024)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.post("/up", files={"f": ("x.bin", payload)})
    assert r.json() == {"saved": len(payload)} and target.read_bytes() == payload
