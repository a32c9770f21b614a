"""Limits on a JSON value that every encoder and the store can hold: depth and valid text.

Producers' `data` is checked with it before the commit; rows already stored are checked with it
before delivery, so a row written by an older version or by hand cannot break a user's feed.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 32  # objects and arrays, the outer one counting as 1; orjson stops at 254


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as PostgreSQL text or encoded as UTF-8, if it cannot."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    return None


def tree_problem(root: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """Depth and text of every key and string, walked without recursion (input is hostile)."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            texts: list[Any] = list(node)
            children: list[Any] = list(node.values())
        elif isinstance(node, list):
            texts, children = [], node
        else:
            continue
        if depth > max_depth:
            return f"must be nested at most {max_depth} levels deep"
        for text in texts + [child for child in children if isinstance(child, str)]:
            problem = text_problem(text) if isinstance(text, str) else "keys must be strings"
            if problem is not None:
                return problem
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return None


def depth_problem(root: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """Depth alone, for a value decoded from the store: PostgreSQL's jsonb holds no NUL and
    orjson decodes no lone surrogate, so its keys and strings are text every encoder takes."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > max_depth:
            return f"must be nested at most {max_depth} levels deep"
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return None
