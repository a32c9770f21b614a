"""Real local servers for the fallback tests: an SMTP server (aiosmtpd) and a web push
endpoint that checks the VAPID JWT and decrypts the aes128gcm payload like a push service."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import jwt
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared import serialization
from shared.preferences import PushSubscription
from tests.support.services import free_port


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Until `check()` holds; AssertionError after `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not true within {within} s")


# -- SMTP -------------------------------------------------------------------------------------


@dataclass
class Inbox:
    """aiosmtpd handler: keeps every accepted message; can hold the first RCPT (a slow server)."""

    messages: list[EmailMessage] = field(default_factory=list)
    hold_first_rcpt: float = 0.0
    rcpts: int = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        self.rcpts += 1
        if self.rcpts == 1 and self.hold_first_rcpt:
            await asyncio.sleep(self.hold_first_rcpt)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        message["X-Test-Rcpt"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, port: int | None = None, hold_first_rcpt: float = 0.0) -> None:
        self.port = port or free_port()
        self.inbox = Inbox(hold_first_rcpt=hold_first_rcpt)
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        return self.inbox.messages


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text, html) of a multipart/alternative message."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


# -- web push -------------------------------------------------------------------------------


@dataclass
class VapidKeys:
    private_key: str
    public_key: str

    @classmethod
    def generate(cls) -> VapidKeys:
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return cls(b64(key.private_numbers().private_value.to_bytes(32, "big")), b64(public))


@dataclass
class Device:
    """A browser's push subscription: its own P-256 key and auth secret."""

    endpoint: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self) -> PushSubscription:
        public = self.key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return PushSubscription(self.endpoint, b64(public), b64(self.auth))


@dataclass
class Received:
    path: str
    payload: dict[str, Any]
    claims: dict[str, Any]
    headers: dict[str, str]


class PushService:
    """A push service on loopback. Each device path answers `status` (201 by default); a
    request whose VAPID JWT or encryption does not check out is recorded in `errors`."""

    def __init__(self, vapid_public_key: str) -> None:
        self.vapid_public_key = vapid_public_key
        self.devices: dict[str, Device] = {}
        self.status: dict[str, int] = {}
        self.received: list[Received] = []
        self.errors: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def device(self, name: str, status: int = 201) -> Device:
        device = Device(f"{self.origin}/push/{name}")
        self.devices[f"/push/{name}"] = device
        self.status[f"/push/{name}"] = status
        return device

    def start(self) -> PushService:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def check(self, path: str, headers: dict[str, str], body: bytes) -> Received:
        scheme, _, params = headers.get("authorization", "").partition(" ")
        assert scheme.lower() == "vapid", "Authorization is not vapid t=..., k=..."
        fields = dict(p.strip().split("=", 1) for p in params.split(","))
        assert fields["k"] == self.vapid_public_key, "k is not the server's VAPID public key"
        point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(fields["k"]))
        claims = jwt.decode(fields["t"], point, algorithms=["ES256"], audience=self.origin)
        assert claims["sub"].startswith("mailto:") and claims["exp"] > time.time()
        assert headers.get("content-encoding") == "aes128gcm"
        device = self.devices[path]
        plain = http_ece.decrypt(
            body, private_key=device.key, auth_secret=device.auth, version="aes128gcm"
        )
        return Received(path, serialization.loads(plain), claims, headers)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = service.status.get(self.path, 404)
                if status < 300:
                    try:
                        service.received.append(service.check(self.path, headers, body))
                    except Exception as exc:
                        service.errors.append(repr(exc))
                        status = 400
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
