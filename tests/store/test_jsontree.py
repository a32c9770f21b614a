"""The JSON limits: the producer check (tree_problem) and the store-side depth check."""

from __future__ import annotations

from typing import Any

from shared import jsontree


def nested(depth: int) -> Any:
    """`depth` containers, objects and arrays in turn, the outer one an object."""
    value: Any = {} if depth % 2 else []
    for level in range(depth - 1, 0, -1):
        value = {"k": value} if level % 2 else [value]
    return value


def test_depth_limit_is_the_same_for_both_checks() -> None:
    for depth in (1, 2, jsontree.MAX_DEPTH):
        assert jsontree.tree_problem(nested(depth)) is None
        assert jsontree.depth_problem(nested(depth)) is None
    for value in (nested(jsontree.MAX_DEPTH + 1), nested(251)):
        assert jsontree.tree_problem(value) == jsontree.depth_problem(value)
        assert "at most 32 levels" in str(jsontree.depth_problem(value))


def test_text_is_checked_only_for_what_producers_send() -> None:
    # The store cannot hold these (jsonb refuses NUL and lone surrogates), so rows read from
    # it skip the text walk; a producer's value is still refused.
    for bad in ({"a": "x\x00"}, {"a": ["\ud800"]}, {"\ud800": 1}):
        assert jsontree.tree_problem(bad) is not None
        assert jsontree.depth_problem(bad) is None
    assert jsontree.depth_problem([1, "a", {"b": [2, [3]]}]) is None
