"""Hypothesis strategies for what producers, browsers and sockets may send."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Characters that broke rows or encoders before: NUL, line breaks, lone surrogates, bidi.
NASTY = st.sampled_from(["\x00", "\n", "\r", "\ud800", "\udfff", "\u202e", "\ufeff", "😀", "\\"])
text = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(NASTY, st.text(max_size=4)), max_size=8).map("".join),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)
leaf = st.one_of(st.none(), st.booleans(), numbers, text)
json_value = st.recursive(
    leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)


def nested(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = {"d": value}
    return {"deep": value}


data = st.one_of(
    st.dictionaries(text, json_value, max_size=5),
    st.integers(min_value=28, max_value=300).map(nested),
    st.integers(min_value=16_000, max_value=17_000).map(lambda n: {"pad": "x" * n}),
    json_value,
)
kinds = st.one_of(
    st.sampled_from(["order:shipped", "a:b", "message:received", "x_y:z-1"]),
    st.sampled_from(["order:shipped\n", "Order:Shipped", "a:", ":b", "a:b:c", "a b:c"]),
    text,
    json_value,
)
timestamps = st.one_of(
    st.sampled_from(
        [
            "2099-01-01T00:00:00Z",
            "2099-01-01T00:00:00+05:30",
            "9999-12-31T23:59:59-23:59",
            "9998-12-31T23:59:59+00:00",
            "2000-01-01T00:00:00Z",
            "2099-01-01",
            "2099-01-01T00:00:00",
            "0001-01-01T00:00:00+14:00",
        ]
    ),
    text,
    json_value,
)
urls = st.one_of(
    st.sampled_from(["/orders/1", "https://app.example/x", "//evil.com", "javascript:alert(1)"]),
    text,
    json_value,
)
USER = "$USER"  # replaced by a fresh user id per example, so stored rows can be checked
recipients = st.one_of(
    st.fixed_dictionaries({"user_id": st.one_of(st.just(USER), text, json_value)}),
    st.fixed_dictionaries(
        {"user_ids": st.one_of(st.lists(st.one_of(st.just(USER), text), max_size=4), json_value)}
    ),
    st.just({}),
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "type": kinds,
        "title": st.one_of(text, json_value, st.just("t" * 201)),
        "body": st.one_of(text, json_value, st.just("b" * 5001)),
        "action_url": urls,
        "data": data,
        "idempotency_key": st.one_of(text, json_value),
        "expires_at": timestamps,
        "extra": json_value,
    },
)
valid_core = st.fixed_dictionaries(
    {"type": st.just("fuzz:case"), "title": st.just("hello"), "user_id": st.just(USER)}
)
good_fields = st.fixed_dictionaries(
    {},
    optional={
        "body": st.text(max_size=60),
        "action_url": st.sampled_from(["/orders/1", "https://app.example/x?y=1"]),
        "data": st.dictionaries(st.text(max_size=8), json_value, max_size=4),
        "idempotency_key": st.text(min_size=1, max_size=20).filter(lambda t: t.isprintable()),
        "expires_at": st.sampled_from(["2099-01-01T00:00:00Z", "2098-06-01T12:00:00+05:30"]),
    },
)
bodies = st.one_of(
    st.tuples(recipients, fields).map(lambda pair: {**pair[0], **pair[1]}),
    st.tuples(valid_core, fields).map(lambda pair: {**pair[0], **pair[1]}),
    st.tuples(valid_core, good_fields).map(lambda pair: {**pair[0], **pair[1]}),
    json_value,
)
