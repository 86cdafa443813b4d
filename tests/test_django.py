"""A Django streaming view on microweb under ``--threads 4`` (issue 15).

Its ``StreamingHttpResponse`` runs ORM queries while the body streams. Django's
database connections are per thread, so each query must run on the pool thread
that called the view (it ran on the reactor thread, which then opened connections
of its own and held up every other client while a query ran).
"""
from __future__ import annotations

import sys
import threading
from typing import Any, Callable, Iterator

import httpx
import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402

QUERIES: list[tuple[str, int]] = []  # (what, thread id)


def stream_rows(request: Any) -> Any:
    from django.db import connection
    from django.http import StreamingHttpResponse

    QUERIES.append(("view", threading.get_ident()))

    def rows() -> Iterator[str]:
        for i in range(int(request.GET.get("n", "10"))):
            with connection.cursor() as cursor:  # an ORM query on the thread's own connection
                cursor.execute("SELECT %s * 2", [i])
                (value,) = cursor.fetchone()
            QUERIES.append(("query", threading.get_ident()))
            yield f"{value}\n"

    return StreamingHttpResponse(rows(), content_type="text/plain")


def plain(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse("plain django", content_type="text/plain")


urlpatterns: list[Any] = []


@pytest.fixture(scope="module")
def django_app(tmp_path_factory: Any) -> Any:
    if not settings.configured:
        settings.configure(
            DEBUG=False, SECRET_KEY="test-only", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, MIDDLEWARE=[],
            INSTALLED_APPS=[], USE_TZ=True,
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
                                   "NAME": str(tmp_path_factory.mktemp("django") / "db.sqlite3")}},
        )
    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.urls import path

    urlpatterns[:] = [path("rows", stream_rows), path("plain", plain)]
    sys.modules[__name__].urlpatterns = urlpatterns  # type: ignore[attr-defined]
    return get_wsgi_application()


def test_django_streaming_view_under_threads(live_server: Callable[..., Any], django_app: Any) -> None:
    from microweb.wsgi import WSGIAdapter

    server = live_server(WSGIAdapter(django_app, multithread=True), threads=4)
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/plain").text == "plain django"
        for n in (5, 40):
            QUERIES.clear()
            r = client.get("/rows", params={"n": str(n)})
            assert r.status_code == 200 and r.headers["transfer-encoding"] == "chunked"
            assert r.text == "".join(f"{i * 2}\n" for i in range(n))
            threads = {ident for _, ident in QUERIES}
            assert len(QUERIES) == n + 1 and len(threads) == 1, QUERIES  # view and every query: one thread
            assert server.thread.ident not in threads  # not the reactor's
        r = client.head("/rows")
        assert r.status_code == 200 and r.content == b""
