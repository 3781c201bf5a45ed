"""A tiny loopback TCP proxy that tests can cut, to lose one client's connection.

Point one client at `proxy.hosts` instead of the server and it talks to the server
through real sockets. Then:
- `blackhole()` keeps every socket open but silently drops all bytes both ways (a
  partition: the client notices only through its own timeouts), and new connections
  are accepted but never answered;
- `deafen()` still delivers the client's bytes to the server but drops every reply
  (a request is executed, its answer never arrives);
- `cut()` closes every connection at once and refuses new ones;
- `restore()` closes what the previous mode left hanging and forwards new
  connections again.
One thread moves the bytes with `selectors`; `close()` stops it.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from enum import Enum


class Mode(Enum):
    FORWARD = "forward"
    BLACKHOLE = "blackhole"
    DEAFEN = "deafen"
    CUT = "cut"


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._peers: dict[socket.socket, socket.socket | None] = {}
        self._upstreams: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._mode = Mode.FORWARD
        self._closing = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        self._thread.start()

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    def blackhole(self) -> None:
        self._set(Mode.BLACKHOLE)

    def deafen(self) -> None:
        self._set(Mode.DEAFEN)

    def cut(self) -> None:
        self._set(Mode.CUT)

    def restore(self) -> None:
        self._set(Mode.FORWARD)

    def close(self) -> None:
        self._closing = True
        self._wake_w.send(b"x")
        self._thread.join(5)
        for sock in list(self._peers):
            self._drop(sock)
        self._selector.close()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def _set(self, mode: Mode) -> None:
        with self._lock:
            previous, self._mode = self._mode, mode
        if mode is Mode.CUT or (mode is Mode.FORWARD and previous is not Mode.FORWARD):
            self._wake_w.send(b"c")  # the proxy thread closes every connection
        else:
            self._wake_w.send(b"x")

    def _run(self) -> None:
        while not self._closing:
            for key, _ in self._selector.select(timeout=0.5):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if key.data == "wake":
                    if b"c" in sock.recv(64):
                        for peer in list(self._peers):
                            self._drop(peer)
                elif sock is self._listener:
                    self._accept()
                else:
                    self._relay(sock)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        with self._lock:
            mode = self._mode
        if mode is Mode.CUT:
            client.close()
            return
        upstream = None
        if mode in (Mode.FORWARD, Mode.DEAFEN):
            try:
                upstream = socket.create_connection(self._upstream, timeout=2)
            except OSError:
                client.close()
                return
            upstream.setblocking(True)
        client.setblocking(True)
        self._peers[client] = upstream
        self._selector.register(client, selectors.EVENT_READ, "peer")
        if upstream is not None:
            self._upstreams.add(upstream)
            self._peers[upstream] = client
            self._selector.register(upstream, selectors.EVENT_READ, "peer")

    def _relay(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        with self._lock:
            mode = self._mode
        if mode is Mode.BLACKHOLE or (mode is Mode.DEAFEN and sock in self._upstreams):
            if not data:
                self._forget(sock)
            return
        if not data:
            self._drop(sock)
            return
        peer = self._peers.get(sock)
        if peer is None:
            return
        try:
            peer.sendall(data)
        except OSError:
            self._drop(sock)

    def _forget(self, sock: socket.socket) -> None:
        """Close one side silently (a black hole does not pass on a close)."""
        peer = self._peers.pop(sock, None)
        if peer is not None:
            self._peers[peer] = None
        self._unregister(sock)

    def _drop(self, sock: socket.socket) -> None:
        peer = self._peers.pop(sock, None)
        self._unregister(sock)
        if peer is not None:
            self._peers.pop(peer, None)
            self._unregister(peer)

    def _unregister(self, sock: socket.socket) -> None:
        self._upstreams.discard(sock)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        sock.close()
