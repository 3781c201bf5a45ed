"""The campaign's links over real loopback sockets: open they forward both ways, a
blackhole holds the bytes until it opens again, refused drops the connection and
turns new ones away."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from devcluster.campaign.links import Links, LinkState

pytestmark = pytest.mark.integration


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def link() -> Iterator[tuple[Links, int]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    links = Links()
    port = links.open("echo", ("127.0.0.1", server.server_address[1]))
    try:
        yield links, port
    finally:
        links.close()
        server.shutdown()
        server.server_close()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def test_an_open_link_forwards_both_ways(link: tuple[Links, int]) -> None:
    _, port = link
    with connect(port) as client:
        client.sendall(b"ping")
        assert client.recv(4) == b"ping"


def test_a_blackhole_holds_the_bytes_until_the_link_opens(link: tuple[Links, int]) -> None:
    links, port = link
    with connect(port) as client:
        client.sendall(b"one")
        assert client.recv(3) == b"one"
        links.set(["echo"], LinkState.BLACKHOLE)
        assert links.state("echo") is LinkState.BLACKHOLE
        client.sendall(b"two")
        client.settimeout(0.5)
        with pytest.raises(TimeoutError):
            client.recv(3)
        links.set(["echo"], LinkState.OPEN)
        client.settimeout(10)
        assert client.recv(3) == b"two"


def test_a_refused_link_drops_its_connections_and_new_ones(link: tuple[Links, int]) -> None:
    links, port = link
    with connect(port) as client:
        client.sendall(b"one")
        assert client.recv(3) == b"one"
        links.set(["echo"], LinkState.REFUSED)
        with contextlib.suppress(ConnectionResetError):
            assert client.recv(3) == b""
    with connect(port) as turned_away, contextlib.suppress(ConnectionResetError):
        assert turned_away.recv(3) == b""
    links.set(["echo"], LinkState.OPEN)
    with connect(port) as client:
        client.sendall(b"back")
        assert client.recv(4) == b"back"
