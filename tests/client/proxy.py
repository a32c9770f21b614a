"""A tiny TCP proxy that breaks its first connection, then forwards faithfully."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


def _read_request(conn: socket.socket) -> bytes:
    """One whole HTTP/1.1 request with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class FlakyProxy:
    """Connection 1 is dropped: before forwarding (`lose_response=False`) or after the upstream
    started answering (`lose_response=True`, so the server did the work but the client never
    hears). Every later connection is piped through unchanged."""

    def __init__(self, upstream_port: int, *, lose_response: bool) -> None:
        self.upstream_port = upstream_port
        self.lose_response = lose_response
        self.connections = 0
        self.dropped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets: list[socket.socket] = [self._listener]
        self._lock = threading.Lock()
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.append(conn)
                first = self.connections == 0
                self.connections += 1
            target = self._drop if first else self._forward
            threading.Thread(target=target, args=(conn,), daemon=True).start()

    def _upstream(self) -> socket.socket:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
        with self._lock:
            self._sockets.append(upstream)
        return upstream

    def _drop(self, conn: socket.socket) -> None:
        request = _read_request(conn)
        if self.lose_response:
            upstream = self._upstream()
            upstream.sendall(request)
            upstream.recv(1)  # the server committed and began to answer
            upstream.close()
        self.dropped.set()
        conn.close()

    def _forward(self, conn: socket.socket) -> None:
        upstream = self._upstream()
        upstream.settimeout(None)
        threading.Thread(target=_pipe, args=(upstream, conn), daemon=True).start()
        _pipe(conn, upstream)

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def __enter__(self) -> FlakyProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass
