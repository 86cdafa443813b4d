"""``curl -r``, ``curl -z`` and ``curl --compressed`` against ``microweb serve`` and nginx, side by side.

nginx (Debian's, one worker) serves the same temporary folder with ``gzip_static on``,
``gzip_vary on`` and ``if_modified_since before`` (RFC 9110's rule, which microweb follows;
nginx's default ``exact`` only answers 304 to the very Last-Modified date).
"""
from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Iterator

import pytest

from conftest import free_port, start_cli, wait_for_port

NGINX = shutil.which("nginx")
CURL = shutil.which("curl")
pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian package nginx-light)"),
    pytest.mark.skipif(CURL is None, reason="curl is not installed"),
]

CONF = """worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    sendfile on;
    gzip_static on;
    gzip_vary on;
    if_modified_since before;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str, str]]:
    """(nginx URL, microweb URL, folder): both serving the same files."""
    tmp = tempfile.mkdtemp(prefix="microweb-nginx-")
    try:
        os.chmod(tmp, 0o755)  # nginx's worker runs as nobody when started as root
        root = os.path.join(tmp, "www")
        os.mkdir(root, 0o755)
        text = b"".join(b"line %05d of the page\n" % i for i in range(3000))
        files = {"page.txt": text, "page.txt.gz": gzip.compress(text, mtime=0), "data.bin": os.urandom(5000),
                 "index.html": b"<h1>home</h1>"}
        os.mkdir(os.path.join(root, "dir"), 0o755)
        files["dir/index.html"] = b"<h1>dir</h1>"
        for name, data in files.items():
            path = os.path.join(root, name)
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, 0o644)
        stamp = time.time() - 3600
        for name in files:
            os.utime(os.path.join(root, name), (stamp, stamp))
        nginx_port, mw_port = free_port(), free_port()
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(CONF.format(tmp=tmp, port=nginx_port, root=root))
        nginx = subprocess.Popen([NGINX or "nginx", "-c", conf, "-e", os.path.join(tmp, "error.log")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for_port("127.0.0.1", nginx_port, timeout=5)
        except TimeoutError:
            nginx.kill()
            _, err = nginx.communicate(timeout=5)
            pytest.skip(f"nginx did not start: {err.decode(errors='replace').strip()[:200]}")
        microweb = start_cli("serve", root, "--port", str(mw_port))
        try:
            wait_for_port("127.0.0.1", mw_port)
            yield f"http://127.0.0.1:{nginx_port}", f"http://127.0.0.1:{mw_port}", root
        finally:
            microweb.send_signal(signal.SIGINT)
            microweb.communicate(timeout=10)
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait(5)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def curl(url: str, *args: str) -> tuple[int, dict[str, str], bytes]:
    """Run curl; (status, headers lower-cased, body as curl wrote it)."""
    with tempfile.NamedTemporaryFile() as out:
        result = subprocess.run([CURL or "curl", "-s", "-S", "--max-time", "10", "-D", "-", "-o", out.name, *args, url],
                                capture_output=True, timeout=20)
        assert result.returncode == 0, result.stderr
        body = open(out.name, "rb").read()
    lines = result.stdout.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers, body


KEY_HEADERS = ("content-length", "content-range", "content-encoding", "last-modified", "vary")


def both(servers: tuple[str, str, str], path: str, *args: str) -> tuple[tuple[int, dict[str, str], bytes], ...]:
    nginx_url, mw_url, _ = servers
    theirs, ours = curl(nginx_url + path, *args), curl(mw_url + path, *args)
    assert ours[0] == theirs[0], (args, theirs[1], ours[1])
    # Error pages differ (nginx's HTML vs ours): for 4xx only the status and Content-Range count.
    for name in KEY_HEADERS if ours[0] < 400 else ("content-range",):
        assert ours[1].get(name) == theirs[1].get(name), (name, args, theirs[1], ours[1])
    return theirs, ours


@pytest.mark.parametrize("args", [["-r", "0-99"], ["-r", "0-0"], ["-r", "-10"], ["-r", "100-"], ["-r", "99999-"],
                                  ["-r", "10-20", "-H", "Accept-Encoding: gzip"], ["-I", "-r", "0-99"], []])
def test_curl_range(servers: tuple[str, str, str], args: list[str]) -> None:
    for path in ("/data.bin", "/page.txt"):
        theirs, ours = both(servers, path, *args)
        if ours[0] < 400 and "-I" not in args:
            assert ours[2] == theirs[2]
        if theirs[0] == 206:
            assert "etag" in ours[1] and "etag" in theirs[1]


def test_curl_multiple_ranges(servers: tuple[str, str, str]) -> None:
    nginx_url, mw_url, _ = servers
    theirs, ours = curl(nginx_url + "/data.bin", "-r", "0-1,5-6"), curl(mw_url + "/data.bin", "-r", "0-1,5-6")
    assert ours[0] == theirs[0] == 206
    assert ours[1]["content-type"].startswith("multipart/byteranges; boundary=")
    assert theirs[1]["content-type"].startswith("multipart/byteranges; boundary=")


def test_curl_z(servers: tuple[str, str, str]) -> None:
    _, _, root = servers
    page = os.path.join(root, "page.txt")
    for args in (["-z", page], ["-z", "Thu, 01 Jan 1970 00:00:00 GMT"], ["-z", "Fri, 01 Jan 2100 00:00:00 GMT"],
                 ["-z", "-Thu, 01 Jan 1970 00:00:00 GMT"], ["-z", "-" + page], ["-I", "-z", page],
                 ["-z", page, "--compressed"]):
        theirs, ours = both(servers, "/page.txt", *args)
        if ours[0] < 400 and "-I" not in args:
            assert ours[2] == theirs[2], args
    theirs, ours = both(servers, "/page.txt", "-z", page)
    assert theirs[0] == 304


def test_curl_compressed(servers: tuple[str, str, str]) -> None:
    theirs, ours = both(servers, "/page.txt", "--compressed")
    assert ours[1]["content-encoding"] == "gzip" and ours[1]["vary"] == "Accept-Encoding"
    assert ours[2] == theirs[2] and ours[2].startswith(b"line 00000")  # curl decoded both
    theirs, ours = both(servers, "/page.txt", "-H", "Accept-Encoding: gzip")
    assert ours[2] == theirs[2] and gzip.decompress(ours[2]).startswith(b"line 00000")


def test_if_none_match_round_trip(servers: tuple[str, str, str]) -> None:
    nginx_url, mw_url, _ = servers
    for url in (nginx_url, mw_url):
        status, headers, _ = curl(url + "/page.txt")
        assert status == 200 and headers["accept-ranges"] == "bytes"
        again = curl(url + "/page.txt", "-H", f"If-None-Match: {headers['etag']}")
        assert again[0] == 304 and again[1]["etag"] == headers["etag"]


def test_directories_and_missing_files(servers: tuple[str, str, str]) -> None:
    nginx_url, mw_url, _ = servers
    for path in ("/", "/dir/", "/missing.txt", "/dir/missing"):
        assert curl(mw_url + path)[0] == curl(nginx_url + path)[0], path
    theirs, ours = curl(nginx_url + "/dir"), curl(mw_url + "/dir")
    assert ours[0] == theirs[0] == 301
    assert ours[1]["location"].endswith("/dir/") and theirs[1]["location"].endswith("/dir/")
