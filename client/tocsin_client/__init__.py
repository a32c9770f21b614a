"""Tocsin producer client: send notifications from Python with httpx and the stdlib only.

import os
from tocsin_client import Client
api_key = os.environ["TOCSIN_PRODUCER_KEY"]  # one of the dispatcher's TOCSIN_PRODUCER_KEYS
with Client("http://127.0.0.1:8081", api_key) as tocsin:
    tocsin.send("42", "order:status_changed", "Order #1042 shipped", action_url="/orders/1042")
"""

from tocsin_client._core import SendResult
from tocsin_client.aio import AsyncClient
from tocsin_client.errors import (
    AuthenticationError,
    FieldError,
    PayloadTooLarge,
    ServiceUnavailable,
    TocsinError,
    TransportError,
    ValidationError,
)
from tocsin_client.sync import Client
from tocsin_client.tokens import user_token

__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "FieldError",
    "PayloadTooLarge",
    "SendResult",
    "ServiceUnavailable",
    "TocsinError",
    "TransportError",
    "ValidationError",
    "user_token",
]
