"""A real nginx on loopback load-balancing two microweb processes.

Checks: requests are spread over both; the client's address (and scheme/host) comes
through X-Forwarded-*; nginx keeps its upstream connections alive; and when one
upstream stops, nginx routes around it. Run with ``-s`` to see the transcript.
"""
from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
from typing import Any, Iterator

import httpx
import pytest

from conftest import REPO_ROOT, free_port, start_cli, wait_for_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(NGINX is None, reason="nginx is not installed (.ci/run installs nginx-light)")]

CONF = """
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream microweb {{
        server 127.0.0.1:{p1} max_fails=1 fail_timeout=30s;
        server 127.0.0.1:{p2} max_fails=1 fail_timeout=30s;
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://microweb;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_next_upstream error timeout http_502;
        }}
    }}
}}
"""


def log(text: str) -> None:
    print(f"[nginx-lb] {text}", flush=True)


def upstream_connections(ports: set[int]) -> tuple[set[int], int]:
    """nginx's side of its connections to ``ports``: (local ports ever seen, how many are ESTABLISHED)."""
    local_ports: set[int] = set()
    established = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if int(remote.rsplit(":", 1)[1], 16) in ports:
                local_ports.add(int(local.rsplit(":", 1)[1], 16))
                established += state == "01"
    return local_ports, established


def get_from(url: str, source: str = "127.0.0.2", headers: dict[str, str] | None = None) -> httpx.Response:
    """One request on a fresh connection from ``source`` (any 127/8 address is loopback on Linux)."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as client:
        return client.get(url, headers=headers)


@pytest.fixture
def cluster(tmp_path: Any) -> Iterator[dict[str, Any]]:
    p1, p2, port = free_port(), free_port(), free_port()
    apps = os.path.join(REPO_ROOT, "tests", "apps")
    upstreams = {p: start_cli("run", "lbapp:app", "--port", str(p), cwd=apps) for p in (p1, p2)}
    for p in upstreams:
        wait_for_port("127.0.0.1", p)
    conf = tmp_path / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(CONF.format(d=tmp_path, p1=p1, p2=p2, port=port, user=user))
    assert NGINX is not None
    nginx = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port("127.0.0.1", port)
    except TimeoutError:
        nginx.kill()
        raise RuntimeError("nginx did not start: " + (nginx.communicate()[0] or "")
                           + (tmp_path / "error.log").read_text())
    log(f"nginx on 127.0.0.1:{port} -> microweb on 127.0.0.1:{p1} and 127.0.0.1:{p2}")
    yield {"url": f"http://127.0.0.1:{port}", "port": port, "upstreams": upstreams, "dir": tmp_path}
    nginx.send_signal(signal.SIGQUIT)
    try:
        nginx.wait(10)
    except subprocess.TimeoutExpired:
        nginx.kill()
    for proc in upstreams.values():
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=15)


def test_nginx_load_balancing(cluster: dict[str, Any]) -> None:
    url = cluster["url"]
    upstreams = cluster["upstreams"]
    ports = set(upstreams)
    pids = {proc.pid: p for p, proc in upstreams.items()}

    # 1. Requests are spread over both upstreams.
    answered_by: collections.Counter[int] = collections.Counter()
    for _ in range(40):
        r = get_from(url + "/")
        assert r.status_code == 200
        answered_by[r.json()["pid"]] += 1
    log("40 requests, answered by upstream port: "
        + ", ".join(f"{pids[pid]}={n}" for pid, n in sorted(answered_by.items())))
    assert set(answered_by) == set(pids) and min(answered_by.values()) >= 10

    # 2. The client's address, scheme and host come through; a forged X-Forwarded-For does not win.
    data = get_from(url + "/", "127.0.0.2").json()
    log(f"client 127.0.0.2 -> app saw client={data['client']} scheme={data['scheme']} host={data['host']} "
        f"external={data['external']}")
    assert data["client"] == "127.0.0.2" and data["scheme"] == "http"
    assert data["host"] == f"127.0.0.1:{cluster['port']}" and data["external"] == f"{url}/"
    data = get_from(url + "/", "127.0.0.3", {"X-Forwarded-For": "6.6.6.6"}).json()
    log(f"client 127.0.0.3 forging X-Forwarded-For: 6.6.6.6 -> app saw client={data['client']}")
    assert data["client"] == "127.0.0.3"

    # 3. nginx keeps its upstream connections alive: 100 more requests reuse a handful of them.
    before, _ = upstream_connections(ports)
    with httpx.Client(timeout=10) as client:
        for _ in range(100):
            assert client.get(url + "/").status_code == 200
    after, established = upstream_connections(ports)
    log(f"142 requests so far (42 on fresh client connections) reached the upstreams over {len(after)} TCP "
        f"connections in all (2 of them the test's readiness probes); the last 100 opened {len(after - before)} "
        f"new ones; {established} upstream connections are open and idle now")
    assert len(after) <= 8 and established >= 1

    # 4. Stop one upstream: nginx routes around it and every request still succeeds.
    stopped_port = min(upstreams)
    stopped = upstreams[stopped_port]
    stopped.send_signal(signal.SIGTERM)
    stopped.wait(15)
    log(f"stopped the upstream on port {stopped_port} (exit status {stopped.returncode})")
    answered_by.clear()
    statuses: collections.Counter[int] = collections.Counter()
    for _ in range(30):
        r = get_from(url + "/")
        statuses[r.status_code] += 1
        if r.status_code == 200:
            answered_by[r.json()["pid"]] += 1
    log(f"30 requests after the stop: statuses {dict(statuses)}, answered by upstream port "
        + ", ".join(f"{pids[pid]}={n}" for pid, n in answered_by.items()))
    assert statuses == {200: 30}
    assert set(answered_by) == {upstreams[max(upstreams)].pid}
    access = (cluster["dir"] / "access.log").read_text().splitlines()
    log(f"nginx access log: {len(access)} lines, all 200: {all(' 200 ' in line for line in access)}")
