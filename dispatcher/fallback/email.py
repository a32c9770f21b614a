"""Email: the message (text and HTML parts from Jinja2 templates, autoescaped HTML) and its
delivery over SMTP (aiosmtplib), with a hook at the point of no return.

Templates: `<type>.txt` / `<type>.html` (the type with ':' as '_', e.g. message_received.html)
override `default.*`; `digest.*` is the digest. A folder in TOCSIN_EMAIL_TEMPLATES is searched
before the built-in ones (dispatcher/fallback/templates).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import quote, urlsplit

import aiosmtplib
import jinja2

from dispatcher.fallback import metrics
from shared.config import EmailSettings, SmtpSettings
from shared.models import Notification
from shared.unsubscribe_tokens import ALL_TYPES, Unsubscribe, sign

TEMPLATES = Path(__file__).parent / "templates"
UNSUBSCRIBE_PATH = "/v1/unsubscribe"


class NotSent(Exception):
    """Nothing was accepted by the server; `transient` says whether a retry may succeed."""

    def __init__(self, reason: str, transient: bool) -> None:
        super().__init__(reason)
        self.transient = transient


class Unknown(Exception):
    """The connection failed after the message was handed over: it may have been accepted."""


def mask(address: str) -> str:
    """For logs: 'alice@example.com' -> 'a***@example.com'."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


@dataclass(frozen=True)
class Item:
    notification: Notification
    link: str


class Composer:
    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings
        folders = [settings.templates] if settings.templates else []
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([*folders, str(TEMPLATES)]),
            autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )

    def link(self, notification: Notification) -> str:
        """The action URL (a path is joined to TOCSIN_PUBLIC_URL), else the site itself."""
        url = notification.action_url
        if url is None:
            return self.settings.public_url + "/"
        return url if urlsplit(url).scheme else self.settings.public_url + url

    def unsubscribe_url(self, user_id: str, kind: str) -> str:
        token = sign(self.settings.unsubscribe_secret, Unsubscribe(user_id, kind))
        return f"{self.settings.public_url}{UNSUBSCRIBE_PATH}?token={quote(token)}"

    def _template(self, names: Sequence[str]) -> jinja2.Template:
        return self.env.select_template(list(names))

    def compose(self, to: str, notifications: Sequence[Notification]) -> EmailMessage:
        """One notification's email, or a digest of several."""
        items = [Item(n, self.link(n)) for n in notifications]
        first = notifications[0]
        digest = len(items) > 1
        kind = ALL_TYPES if digest else first.type
        unsubscribe = self.unsubscribe_url(first.user_id, kind)
        subject = f"{len(items)} unread notifications" if digest else first.title
        names = ["digest"] if digest else [first.type.replace(":", "_"), "default"]
        context = {
            "notification": first,
            "items": items,
            "link": items[0].link,
            "unsubscribe_url": unsubscribe,
            "subject": subject,
        }
        message = EmailMessage()
        message["Subject"] = " ".join(subject.split())  # no line breaks in a header
        message["From"] = self.settings.sender
        message["To"] = to
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=_domain(self.settings.sender))
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
        message["X-Tocsin-Notifications"] = ", ".join(n.id for n in notifications)
        text = self._template([f"{n}.txt" for n in names]).render(context)
        html = self._template([f"{n}.html" for n in names]).render(context)
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message


def _domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "tocsin.invalid"


# The hook runs after RCPT, just before DATA: it returns the message to send now, or None
# to send nothing (every notification in it was read meanwhile).
BeforeData = Callable[[], Awaitable[EmailMessage | None]]


async def deliver(smtp: SmtpSettings, sender: str, to: str, before_data: BeforeData) -> bool:
    """Hand one message to the SMTP server. True when sent, False when the hook said no.

    Raises NotSent (nothing accepted) or Unknown (lost after the message was handed over)."""
    client = aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.port,
        username=smtp.username,
        password=smtp.password,
        use_tls=smtp.tls,
        start_tls=smtp.starttls,
        timeout=smtp.timeout,
    )
    try:
        await _envelope(client, parseaddr(sender)[1], to)
        message = await before_data()
        if message is None:
            return False
        await _data(client, message)
        return True
    finally:
        client.close()


async def _envelope(client: aiosmtplib.SMTP, sender: str, to: str) -> None:
    try:
        await client.connect()
        await client.mail(sender)
        await client.rcpt(to)
    except aiosmtplib.SMTPResponseException as exc:
        raise NotSent(f"SMTP {exc.code} before DATA", transient=400 <= exc.code < 500) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise NotSent(f"SMTP unreachable: {type(exc).__name__}", transient=True) from None


async def _data(client: aiosmtplib.SMTP, message: EmailMessage) -> None:
    started = time.monotonic()
    try:
        await client.data(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))
    except aiosmtplib.SMTPResponseException as exc:  # the server answered: not accepted
        raise NotSent(f"SMTP {exc.code} at DATA", transient=400 <= exc.code < 500) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise Unknown(f"connection lost during DATA: {type(exc).__name__}") from None
    finally:
        metrics.SEND_SECONDS.labels(channel="email").observe(time.monotonic() - started)
    # The message was accepted; a failed goodbye changes nothing.
    with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
        await client.quit()
