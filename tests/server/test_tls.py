"""HTTPS terminated in the reactor: non-blocking handshakes, ALPN, files over TLS, isolation."""
from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from typing import Any, Callable, Iterator

import httpx
import pytest

from conftest import LiveServer, free_port, start_cli, wait_for_port
from microweb import App, FileResponse, Request
from microweb.server.tls import TLSServer, make_ssl_context
from tlsutil import make_cert

BIG = os.urandom(3 * 1024 * 1024 + 17)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: Any) -> tuple[str, str]:
    return make_cert(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: Any) -> str:
    path = tmp_path_factory.mktemp("files") / "big.bin"
    path.write_bytes(BIG)
    return str(path)


class TLSLive(LiveServer):
    def __init__(self, handle: Callable[..., Any], context: ssl.SSLContext, **options: Any) -> None:
        self.server = TLSServer(handle, host="127.0.0.1", port=0, ssl_context=context, request_class=Request,
                                **options)
        self.host, self.port = self.server.address
        self.url = f"https://{self.host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.server.started.wait(5)


@pytest.fixture
def tls_server(cert: tuple[str, str], big_file: str) -> Iterator[TLSLive]:
    app = App(template_folder=None, static_folder=os.path.dirname(big_file))

    @app.route("/")
    def index(request: Request) -> dict[str, Any]:
        return {"scheme": request.scheme, "n": len(request.body)}

    @app.route("/echo", methods=["POST"])
    def echo(request: Request) -> bytes:
        return request.body

    @app.route("/stream")
    def stream(request: Request) -> Iterator[bytes]:
        for _ in range(50):
            yield b"x" * 10000

    @app.route("/file")
    def file(request: Request) -> FileResponse:
        return FileResponse(big_file)

    live = TLSLive(app.handle, make_ssl_context(*cert))
    yield live
    live.stop()


def client_context(cert: tuple[str, str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cert[0])
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


def test_https_requests_keep_alive(tls_server: TLSLive, cert: tuple[str, str]) -> None:
    assert isinstance(tls_server.server, TLSServer) and tls_server.server.url.startswith("https://")
    with httpx.Client(base_url=tls_server.url, verify=client_context(cert)) as client:
        for _ in range(5):
            assert client.get("/").json() == {"scheme": "https", "n": 0}
        payload = os.urandom(300_000)
        assert client.post("/echo", content=payload).content == payload
        assert client.get("/stream").content == b"x" * 500_000


def test_alpn_http11(tls_server: TLSLive, cert: tuple[str, str]) -> None:
    raw = socket.create_connection((tls_server.host, tls_server.port), timeout=5)
    with client_context(cert).wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.selected_alpn_protocol() == "http/1.1"
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_files_over_tls_use_read_send(tls_server: TLSLive, cert: tuple[str, str]) -> None:
    """sendfile would bypass TLS and corrupt the stream; the bytes must arrive intact."""
    with httpx.Client(base_url=tls_server.url, verify=client_context(cert)) as client:
        r = client.get("/file")
        assert r.content == BIG
        r = client.get("/big.bin")  # the static fallback
        assert r.content == BIG
        assert r.headers["content-length"] == str(len(BIG))


def test_slow_and_broken_handshakes_hold_only_their_connection(tls_server: TLSLive, cert: tuple[str, str]) -> None:
    silent = [socket.create_connection((tls_server.host, tls_server.port)) for _ in range(20)]
    half = socket.create_connection((tls_server.host, tls_server.port))
    half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello, then nothing
    garbage = socket.create_connection((tls_server.host, tls_server.port))
    garbage.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP to an HTTPS port
    try:
        start = time.monotonic()
        with httpx.Client(base_url=tls_server.url, verify=client_context(cert)) as client:
            for _ in range(10):
                assert client.get("/").status_code == 200
        assert time.monotonic() - start < 2.0
        garbage.settimeout(5)
        data = b""
        try:
            while chunk := garbage.recv(4096):
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        assert b"200" not in data  # refused at the TLS layer, connection closed
    finally:
        for s in silent + [half, garbage]:
            s.close()


def test_handshake_timeout_closes(cert: tuple[str, str]) -> None:
    app = App(template_folder=None, static_folder=None)
    live = TLSLive(app.handle, make_ssl_context(*cert), head_timeout=1.0)
    try:
        idle = socket.create_connection((live.host, live.port), timeout=5)
        start = time.monotonic()
        assert idle.recv(100) == b""  # closed by the server
        assert 0.5 < time.monotonic() - start < 4
        idle.close()
    finally:
        live.stop()


def test_many_concurrent_tls_clients(tls_server: TLSLive, cert: tuple[str, str]) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with httpx.Client(base_url=tls_server.url, verify=client_context(cert)) as client:
                for _ in range(10):
                    assert client.get("/").status_code == 200
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors


def test_cli_certfile(cert: tuple[str, str], tmp_path: Any) -> None:
    import subprocess

    (tmp_path / "tlsapp.py").write_text(
        "from microweb import App\napp = App()\n@app.route('/')\ndef i(request):\n    return request.scheme\n")
    port = free_port()
    proc = start_cli("run", "tlsapp:app", "--port", str(port), "--certfile", cert[0], "--keyfile", cert[1],
                     cwd=str(tmp_path))
    try:
        wait_for_port("127.0.0.1", port)
        r = httpx.get(f"https://127.0.0.1:{port}/", verify=client_context(cert))
        assert r.text == "https"
        out = subprocess.run(["curl", "-s", "--cacert", cert[0], "-w", " %{http_version}",
                              f"https://localhost:{port}/"], capture_output=True, text=True, timeout=10)
        assert out.stdout == "https 1.1"
    finally:
        proc.terminate()
        out_text, _ = proc.communicate(timeout=10)
    assert f"https://127.0.0.1:{port}" in out_text


def test_cli_keyfile_without_certfile() -> None:
    from conftest import run_cli

    r = run_cli("run", "tests/apps/behaviour.py", "--keyfile", "k.pem")
    assert r.returncode == 2 and "--keyfile needs --certfile" in r.stderr


def test_cli_tls_with_workers(cert: tuple[str, str], tmp_path: Any) -> None:
    """Each pre-forked worker terminates TLS on the shared socket."""
    (tmp_path / "tlsapp.py").write_text(
        "import os\nfrom microweb import App\napp = App()\n@app.route('/')\ndef i(request):\n"
        "    return f'{request.scheme} {os.getpid()}'\n")
    port = free_port()
    proc = start_cli("run", "tlsapp:app", "--port", str(port), "--certfile", cert[0], "--keyfile", cert[1],
                     "--workers", "2", cwd=str(tmp_path))
    try:
        wait_for_port("127.0.0.1", port)
        pids = set()
        deadline = time.monotonic() + 10
        while len(pids) < 2 and time.monotonic() < deadline:
            r = httpx.get(f"https://127.0.0.1:{port}/", verify=client_context(cert))
            scheme, pid = r.text.split()
            assert scheme == "https"
            pids.add(pid)
        assert len(pids) == 2
    finally:
        proc.terminate()
        out_text, _ = proc.communicate(timeout=20)
    assert f"https://127.0.0.1:{port} with 2 workers" in out_text


def test_tls_with_thread_pool(cert: tuple[str, str], big_file: str) -> None:
    app = App(template_folder=None, static_folder=os.path.dirname(big_file))

    @app.route("/slow")
    def slow(request: Request) -> str:
        time.sleep(0.5)
        return "slow"

    @app.route("/fast")
    def fast(request: Request) -> str:
        return "fast"

    live = TLSLive(app.handle, make_ssl_context(*cert), threads=4)
    try:
        results: list[str] = []
        t = threading.Thread(target=lambda: results.append(
            httpx.get(live.url + "/slow", verify=client_context(cert), timeout=10).text))
        t.start()
        time.sleep(0.1)
        with httpx.Client(base_url=live.url, verify=client_context(cert)) as client:
            start = time.monotonic()
            assert client.get("/fast").text == "fast"
            assert time.monotonic() - start < 0.4  # not stuck behind /slow
            assert client.get("/big.bin").content == BIG
        t.join(10)
        assert results == ["slow"]
    finally:
        live.stop()


def test_app_run_with_certfile(cert: tuple[str, str], tmp_path: Any) -> None:
    import subprocess
    import sys

    from conftest import REPO_ROOT

    port = free_port()
    (tmp_path / "runme.py").write_text(
        "import sys\nfrom microweb import App\napp = App()\n@app.route('/')\ndef i(request):\n"
        "    return request.scheme\n"
        f"app.run(port={port}, certfile=sys.argv[1], keyfile=sys.argv[2])\n")
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    proc = subprocess.Popen([sys.executable, "runme.py", *cert], cwd=str(tmp_path), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port("127.0.0.1", port)
        assert httpx.get(f"https://127.0.0.1:{port}/", verify=client_context(cert)).text == "https"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert f"https://127.0.0.1:{port}" in out


def test_cli_bad_certificate_is_a_usage_error(cert: tuple[str, str]) -> None:
    from conftest import run_cli

    r = run_cli("run", "tests/apps/behaviour.py", "--certfile", cert[1], "--keyfile", cert[0])  # swapped
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "cannot load --certfile/--keyfile" in r.stderr and "Traceback" not in r.stderr
