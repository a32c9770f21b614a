"""The OpenAPI 3.1 description of the dispatcher, built from the validator's own limits."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from dispatcher import validation as v
from shared.auth import USER_ID_MAX_LENGTH
from shared.fallback_rules import CHANNELS
from shared.types import TYPE_MAX_LENGTH, TYPE_PATTERN

VERSION = "1.0.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _text(minimum: int, maximum: int, nullable: bool = False) -> dict[str, Any]:
    kind: Any = ["string", "null"] if nullable else "string"
    return {"type": kind, "minLength": minimum, "maxLength": maximum}


def _request_schema(max_recipients: int) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(v.REQUIRED_FIELDS),
        "oneOf": [{"required": ["user_id"]}, {"required": ["user_ids"]}],
        "properties": {
            "user_id": _ref("UserId"),
            "user_ids": {
                "type": "array",
                "items": _ref("UserId"),
                "minItems": 1,
                "maxItems": max_recipients,
                "description": "Duplicates collapse to one notification per user.",
            },
            "type": {
                "type": "string",
                "maxLength": TYPE_MAX_LENGTH,
                "pattern": TYPE_PATTERN.pattern,
            },
            "title": {**_text(1, v.TITLE_MAX_LENGTH), "description": "Not blank."},
            "body": {**_text(0, v.BODY_MAX_LENGTH, nullable=True), "default": ""},
            "action_url": {
                **_text(1, v.ACTION_URL_MAX_LENGTH, nullable=True),
                "description": "A path starting with a single '/', or an http(s) URL.",
            },
            "data": {
                "type": ["object", "null"],
                "description": (
                    f"At most {v.DATA_MAX_BYTES} bytes once encoded as JSON and nested at most"
                    f" {v.DATA_MAX_DEPTH} levels deep."
                ),
            },
            "idempotency_key": {
                **_text(1, v.IDEMPOTENCY_KEY_MAX_LENGTH, nullable=True),
                "description": "Same key and user: the first notification is answered again.",
            },
            "expires_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "RFC 3339 with a time zone, in the future.",
            },
            "email": {
                **_text(3, v.EMAIL_MAX_LENGTH, nullable=True),
                "description": "Where 'email if still unread' goes for these recipients"
                " (else each user's profile email). One address, no display name.",
            },
            "channels": {
                "type": ["array", "null"],
                "items": {"enum": list(CHANNELS)},
                "description": "Fallback channels allowed for this send, replacing the type's"
                " rules; [] means in-app only. Users' preferences still apply.",
            },
        },
    }


_PREFERENCES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "channels[channel][type] overrides channels[channel]['*'], which overrides"
    " the type's default rule. quietHours delays pushes and emails (not in-app delivery).",
    "properties": {
        "channels": {
            "type": "object",
            "properties": {
                c: {"type": "object", "additionalProperties": {"type": "boolean"}} for c in CHANNELS
            },
        },
        "quietHours": {
            "type": ["object", "null"],
            "required": ["start", "end", "timeZone"],
            "properties": {
                "start": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                "end": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                "timeZone": {"type": "string", "description": "IANA name, e.g. Europe/Paris"},
            },
        },
    },
}

_PROFILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "email": {**_text(3, v.EMAIL_MAX_LENGTH, nullable=True)},
        "timeZone": {"type": ["string", "null"], "description": "IANA name"},
        "locale": {"type": ["string", "null"], "description": "BCP 47 tag, e.g. pt-BR"},
    },
}


def _user_operation(op: str, summary: str, schema: str, body: bool) -> dict[str, Any]:
    responses = {
        "200": _json(schema, "The stored value."),
        "401": _json("Error", "No or malformed Authorization header (code unauthorized)."),
        "403": _json("Error", "Producer key not accepted (code forbidden)."),
        "422": _json("Error", "Bad user id or fields, each named in error.fields."),
        "503": _json("Error", "PostgreSQL unavailable (store_unavailable)."),
    }
    operation: dict[str, Any] = {
        "operationId": op,
        "summary": summary,
        "security": [{"producerKey": []}],
        "parameters": [
            {"name": "user_id", "in": "path", "required": True, "schema": _ref("UserId")}
        ],
        "responses": responses,
    }
    if body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(schema)}},
        }
    return operation


def _user_paths() -> dict[str, Any]:
    return {
        "/v1/users/{user_id}/preferences": {
            "get": _user_operation("getPreferences", "A user's preferences.", "Preferences", False),
            "put": _user_operation(
                "putPreferences",
                "Replace a user's preferences; pending jobs on channels now off are cancelled.",
                "Preferences",
                True,
            ),
        },
        "/v1/users/{user_id}/profile": {
            "get": _user_operation("getProfile", "A user's profile.", "Profile", False),
            "put": _user_operation(
                "putProfile", "Replace a user's profile (null clears a field).", "Profile", True
            ),
        },
    }


_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "array", "items": _ref("FieldError")},
            },
        }
    },
}

_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["notifications"],
    "properties": {
        "notifications": {
            "type": "array",
            "description": "One entry per distinct recipient, in request order.",
            "items": {
                "type": "object",
                "required": ["user_id", "id", "seq", "created"],
                "properties": {
                    "user_id": {"type": "string"},
                    "id": {"type": "string", "format": "uuid"},
                    "seq": {"type": "integer", "minimum": 1},
                    "created": {"type": "boolean", "description": "false: idempotent replay"},
                },
            },
        }
    },
}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _send_operation(max_body_bytes: int) -> dict[str, Any]:
    return {
        "operationId": "sendNotification",
        "summary": "Store a notification for one or many users, then push it live.",
        "security": [{"producerKey": []}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref("NotificationRequest")}},
        },
        "responses": {
            "201": _json("SendResult", "Stored (and published when Redis is up)."),
            "200": _json("SendResult", "Every recipient was an idempotent replay."),
            "400": _json("Error", "The body is not JSON (code invalid_json)."),
            "401": _json("Error", "No or malformed Authorization header (code unauthorized)."),
            "403": _json("Error", "Producer key not accepted (code forbidden)."),
            "413": _json("Error", f"Body over {max_body_bytes} bytes (code payload_too_large)."),
            "422": _json("Error", "Bad fields, each named in error.fields (validation_error)."),
            "500": _json("Error", "Unexpected server error (code internal_error)."),
            "503": _json("Error", "PostgreSQL unavailable; nothing stored (store_unavailable)."),
        },
    }


def _probe(summary: str, codes: dict[str, str]) -> dict[str, Any]:
    responses = {
        code: {"description": text, "content": {"application/json": {"schema": {}}}}
        for code, text in codes.items()
    }
    return {"get": {"summary": summary, "responses": responses}}


@lru_cache(maxsize=8)
def document(max_recipients: int, max_body_bytes: int) -> dict[str, Any]:
    """The whole document for a dispatcher configured with these limits."""
    text = {"description": "Prometheus exposition", "content": {"text/plain": {"schema": {}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tocsin dispatcher (producer API)", "version": VERSION},
        "paths": {
            "/v1/notifications": {"post": _send_operation(max_body_bytes)},
            "/healthz": _probe("The process is alive.", {"200": "Alive."}),
            "/readyz": _probe(
                "PostgreSQL and Redis answer.",
                {"200": "Ready.", "503": "Not ready; checks names the backend that is down."},
            ),
            "/metrics": {"get": {"summary": "Metrics.", "responses": {"200": text}}},
            "/openapi.json": _probe("This document.", {"200": "OpenAPI 3.1 document."}),
            **_user_paths(),
        },
        "components": {
            "securitySchemes": {"producerKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "UserId": {"type": "string", "minLength": 1, "maxLength": USER_ID_MAX_LENGTH},
                "NotificationRequest": _request_schema(max_recipients),
                "SendResult": _RESULT_SCHEMA,
                "FieldError": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
                "Error": _ERROR_SCHEMA,
                "Preferences": _PREFERENCES_SCHEMA,
                "Profile": _PROFILE_SCHEMA,
            },
        },
    }
