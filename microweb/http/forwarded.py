"""Trusting a reverse proxy: ``X-Forwarded-For/-Proto/-Host`` and RFC 7239 ``Forwarded``.

The server gives a connection from a trusted peer (``--forwarded-allow-ips``,
default ``127.0.0.1``) a ``ProxyRequestParser`` instead of the plain
``RequestParser``; connections from anyone else never look at these headers. For a
trusted connection the cost when no forwarding header is present is one attribute
check per request: whether a header block carries forwarding fields is decided once,
when the block is validated, and the block is reused for every request that sends it.

Which hop is the client: the addresses are walked from the right (the hop nearest
to us) and trusted proxies are skipped; the first untrusted address is the client
(all trusted: the leftmost). ``proto`` and ``host`` come from the nearest hop
(``X-Forwarded-*``) or from the ``Forwarded`` element that named the client.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Callable, Iterable

from .parser import Limits, RequestParser
from .request import HTTPRequest
from .values import FORWARDING_FIELDS, is_valid_host

__all__ = ["TrustedProxies", "ProxyRequestParser", "parser_factory", "apply_forwarded", "parse_forwarded"]

_FORWARDED_PAIR = re.compile(r'\s*([A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*')


class TrustedProxies:
    """A set of peer addresses and networks whose forwarding headers are believed (``*``: every peer)."""

    def __init__(self, spec: str | Iterable[str] | None) -> None:
        if spec is None:
            items: list[str] = []
        elif isinstance(spec, str):
            items = [s.strip() for s in spec.split(",") if s.strip()]
        else:
            items = [s.strip() for s in spec if s.strip()]
        self.everyone = "*" in items
        self.addresses: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in items:
            if item == "*":
                continue
            if "/" in item:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            else:
                self.addresses.add(str(ipaddress.ip_address(item)))

    def __bool__(self) -> bool:
        return self.everyone or bool(self.addresses) or bool(self.networks)

    def apply(self, request: HTTPRequest) -> None:
        """Apply the forwarding fields of a request that came through one of these proxies."""
        apply_forwarded(request, self)

    def __contains__(self, address: object) -> bool:
        if self.everyone:
            return True
        if not isinstance(address, str) or not address:
            return False
        if address in self.addresses:
            return True
        if address.startswith("::ffff:") and address[7:] in self.addresses:
            return True  # an IPv4 peer on a dual-stack socket
        if not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.networks)


class ProxyRequestParser(RequestParser):
    """The parser for a connection from a trusted proxy: applies forwarding headers to each request.

    The parser knows per header block whether forwarding fields are present (computed once
    when the block is first validated), so a request without them costs one attribute check.
    """

    __slots__ = ()

    def __init__(self, limits: Limits, remote_addr: str, trusted: TrustedProxies, scheme: str = "http",
                 request_class: Callable[..., HTTPRequest] = HTTPRequest) -> None:
        super().__init__(limits, remote_addr, scheme, request_class)
        self.proxies = trusted


def parser_factory(trusted: TrustedProxies, scheme: str = "http",
                   request_class: Callable[..., HTTPRequest] = HTTPRequest) -> Callable[[Limits, str], RequestParser]:
    """``make_parser(limits, remote_addr)`` for the server: a proxy-aware parser for trusted peers only."""

    def make_parser(limits: Limits, remote_addr: str) -> RequestParser:
        if remote_addr in trusted:
            return ProxyRequestParser(limits, remote_addr, trusted, scheme, request_class)
        return RequestParser(limits, remote_addr, scheme, request_class)

    return make_parser


def apply_forwarded(request: HTTPRequest, trusted: TrustedProxies) -> bool:
    """Set ``remote_addr``, ``scheme`` and ``host`` from forwarding headers; False if there were none."""
    index = request.headers
    if not any(name in index for name in FORWARDING_FIELDS):
        return False
    forwarded = index.getlist("forwarded")
    if forwarded:
        elements = parse_forwarded(", ".join(forwarded))
        chosen = _pick_client([e.get("for", "") for e in elements], trusted)
        if chosen is not None:
            element = elements[chosen]
            client = _strip_port(element.get("for", ""))
            if client:
                request.remote_addr = client
            _set_scheme(request, element.get("proto"))
            _set_host(request, element.get("host"))
        return True
    xff = _split_list(index.getlist("x-forwarded-for"))
    if xff:
        chosen = _pick_client(xff, trusted)
        if chosen is not None:
            client = _strip_port(xff[chosen])
            if client:
                request.remote_addr = client
    protos = _split_list(index.getlist("x-forwarded-proto"))
    if protos:
        _set_scheme(request, protos[-1])
    hosts = _split_list(index.getlist("x-forwarded-host"))
    if hosts:
        _set_host(request, hosts[-1])
    return True


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """RFC 7239: ``for=1.2.3.4;proto=https, for="[::1]:80"`` -> a dict per element (names lowercased)."""
    elements: list[dict[str, str]] = []
    current: dict[str, str] = {}
    pos = 0
    length = len(value)
    while pos < length:
        m = _FORWARDED_PAIR.match(value, pos)
        if m is None:
            # Malformed: skip to the next element.
            comma = value.find(",", pos)
            if comma < 0:
                break
            if current:
                elements.append(current)
                current = {}
            pos = comma + 1
            continue
        name, raw = m.group(1).lower(), m.group(2)
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        current.setdefault(name, raw)
        pos = m.end()
        if pos < length and value[pos] == ";":
            pos += 1
        elif pos < length and value[pos] == ",":
            elements.append(current)
            current = {}
            pos += 1
        elif pos < length:
            pos += 1
    if current:
        elements.append(current)
    return elements


def _split_list(values: list[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _pick_client(hops: list[str], trusted: TrustedProxies) -> int | None:
    """The index of the client among ``hops`` (client first, nearest proxy last)."""
    if not hops:
        return None
    for i in range(len(hops) - 1, -1, -1):
        if _strip_port(hops[i]) not in trusted:
            return i
    return 0


def _strip_port(node: str) -> str:
    """``1.2.3.4:80`` -> ``1.2.3.4``; ``[::1]:80`` -> ``::1``; ``unknown``/obfuscated ids are kept."""
    node = node.strip().strip('"')
    if node.startswith("["):
        end = node.find("]")
        return node[1:end] if end > 0 else node
    if node.count(":") == 1:
        return node.split(":", 1)[0]
    return node


def _set_scheme(request: HTTPRequest, proto: str | None) -> None:
    if proto:
        proto = proto.strip().lower()
        if proto in ("http", "https"):
            request.scheme = proto


def _set_host(request: HTTPRequest, host: str | None) -> None:
    if host:
        host = host.strip()
        if host and is_valid_host(host):
            request.host = host
