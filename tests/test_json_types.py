"""JSON of real types: datetime/date/time, UUID, Decimal, dataclasses, Enum, sets; ``app.json_default``;
``JSON_SORT_KEYS``/``JSON_ENSURE_ASCII``; ``app.json_loads`` for ``request.json``."""
from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import functools
import json
import uuid
from typing import Any

import pytest

from microweb import App, Request, Response
from microweb.http.parser import RequestParser
from microweb.responses import json_default, json_dumps, make_json_dumps


class Color(enum.Enum):
    RED = "red"
    GREEN = 2


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass
class Shape:
    name: str
    points: list[Point]
    created: datetime.date


WHEN = datetime.datetime(2026, 12, 2, 4, 5, 6, 789000)
WHEN_UTC = datetime.datetime(2026, 12, 2, 4, 5, 6, tzinfo=datetime.timezone.utc)
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")

CASES: list[tuple[str, Any, Any]] = [
    ("datetime", WHEN, "2026-12-02T04:05:06.789000"),
    ("aware datetime", WHEN_UTC, "2026-12-02T04:05:06+00:00"),
    ("date", datetime.date(2026, 12, 2), "2026-12-02"),
    ("time", datetime.time(4, 5), "04:05:00"),
    ("uuid", ID, "12345678-1234-5678-1234-567812345678"),
    ("decimal", decimal.Decimal("10.10"), "10.10"),
    ("enum", Color.RED, "red"),
    ("int enum", Level.HIGH, 3),
    ("dataclass", Shape("tri", [Point(0, 1)], datetime.date(2026, 1, 2)),
     {"name": "tri", "points": [{"x": 0, "y": 1}], "created": "2026-01-02"}),
    ("set", {3, 1, 2}, [1, 2, 3]),
    ("frozenset", frozenset({"b", "a"}), ["a", "b"]),
    ("mixed set", {1, "a"}, None),  # not sortable: a list in some order
]


def json_app(**config: Any) -> App:
    app = App(template_folder=None, static_folder=None)
    app.config.update(config)
    for label, value, _ in CASES:
        app.add_route(f"/{label.replace(' ', '-')}", functools.partial(lambda v, request: {"v": v}, value),
                      name=label)
    return app


@pytest.mark.parametrize("label,value,expected", CASES, ids=[c[0] for c in CASES])
def test_each_type_on_the_fast_path(label: str, value: Any, expected: Any) -> None:
    r = json_app().test_client().get(f"/{label.replace(' ', '-')}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    if expected is None:
        assert sorted(r.json()["v"], key=str) == [1, "a"]
    else:
        assert r.json() == {"v": expected}


def test_each_type_through_hooks_tuples_and_json_response() -> None:
    app = json_app()
    app.after_request(lambda request, response: response)  # not the shortcut any more
    c = app.test_client()
    assert c.get("/uuid").json() == {"v": str(ID)}

    @app.get("/tuple")
    def tuple_(request: Request) -> Any:
        return {"when": WHEN_UTC}, 201

    r = c.get("/tuple")
    assert r.status_code == 201 and r.json() == {"when": "2026-12-02T04:05:06+00:00"}
    assert json.loads(json_dumps([WHEN, ID, decimal.Decimal("1.5")])) == [WHEN.isoformat(), str(ID), "1.5"]


def test_plain_data_is_what_the_standard_encoder_gives() -> None:
    data = {"a": [1, 2.5, None, True, "é", {"b": []}], "c": "\u2028<>&"}
    assert json_dumps(data) == json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def test_plain_data_never_calls_default() -> None:
    calls: list[Any] = []

    def default(value: Any) -> Any:
        calls.append(value)
        return str(value)

    dumps = make_json_dumps(default)
    assert dumps({"a": [1, "x", 2.0, None]}) == '{"a":[1,"x",2.0,null]}' and calls == []
    dumps({"a": ID})
    assert calls == [ID]


def test_unknown_types_are_still_a_500() -> None:
    app = App(template_folder=None, static_folder=None)
    app.add_route("/", lambda request: {"a": object()}, name="index")
    assert app.test_client().get("/").status_code == 500
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_default(object())


def test_app_json_default_extends_and_overrides() -> None:
    class Money:
        def __init__(self, cents: int) -> None:
            self.cents = cents

    app = App(template_folder=None, static_folder=None)
    app.add_route("/", lambda request: {"price": Money(250), "when": WHEN_UTC, "id": ID}, name="index")
    c = app.test_client()
    assert c.get("/").status_code == 500

    def default(value: Any) -> Any:
        if isinstance(value, Money):
            return f"{value.cents / 100:.2f}"
        if isinstance(value, datetime.datetime):
            return int(value.timestamp())  # overrides the ISO default
        raise TypeError  # the rest: the built-in conversions

    app.json_default = default
    assert app.json_default is default
    assert c.get("/").json() == {"price": "2.50", "when": int(WHEN_UTC.timestamp()), "id": str(ID)}


def test_json_sort_keys_and_ensure_ascii_set_after_the_app_is_made() -> None:
    app = App(template_folder=None, static_folder=None)
    app.add_route("/", lambda request: {"b": 1, "a": {"d": 2, "c": "é"}}, name="index")
    c = app.test_client()
    assert c.get("/").text == '{"b":1,"a":{"d":2,"c":"é"}}'
    app.config["JSON_SORT_KEYS"] = True
    assert c.get("/").text == '{"a":{"c":"é","d":2},"b":1}'
    app.config.update(JSON_ENSURE_ASCII=True)
    assert c.get("/").text == '{"a":{"c":"\\u00e9","d":2},"b":1}'
    app.config["JSON_SORT_KEYS"] = False
    assert c.get("/").text == '{"b":1,"a":{"d":2,"c":"\\u00e9"}}'


def test_error_pages_in_json_use_the_app_encoder() -> None:
    app = App(template_folder=None, static_folder=None)
    app.config["JSON_SORT_KEYS"] = True
    r = app.test_client().get("/nothing", headers={"accept": "application/json"})
    assert r.status_code == 404 and r.text == '{"description":null,"error":"Not Found","status":404}'


def test_request_json_uses_app_json_loads() -> None:
    app = App(template_folder=None, static_folder=None)

    @app.post("/")
    def index(request: Request) -> Response:
        return Response(repr(request.json["price"]))

    c = app.test_client()
    assert c.post("/", json={"price": 0.1}).text == "0.1"
    app.json_loads = functools.partial(json.loads, parse_float=decimal.Decimal)
    assert c.post("/", json={"price": 0.1}).text == "Decimal('0.1')"
    r = c.post("/", content=b"{bad", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "Invalid JSON body" in r.text


def test_the_fast_path_output_for_real_types_matches_the_response_path() -> None:
    app = App(template_folder=None, static_folder=None)
    value = {"when": WHEN, "id": ID}
    app.add_route("/fast", lambda request: value, name="fast")
    app.add_route("/slow", lambda request: app.make_response(value), name="slow")
    parse = RequestParser(request_class=app.request_class).receive
    fast = app.handle(parse(b"GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")[0])
    slow = app.handle(parse(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")[0])
    assert isinstance(fast, bytes) and isinstance(slow, bytes)
    assert fast.partition(b"\r\n\r\n")[2] == slow.partition(b"\r\n\r\n")[2]
