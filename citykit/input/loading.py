"""Reading YAML input defensively: any file whatsoever (empty, binary, not UTF-8, huge, deeply
nested, alias bombs, duplicate keys) ends as a `ValidationFailed` naming the file and a place in
it, never as a Python traceback. What is wrong with a document that parses is problems.py's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode
from yaml.nodes import Node
from yaml.nodes import SequenceNode

from citykit.errors import Problem
from citykit.errors import ValidationFailed

MAX_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 40
MAX_EXPANDED_NODES = 200_000


class _Refused(Exception):
    def __init__(self, message: str, mark: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, deep nesting and alias expansion bombs."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(
                    f"nesting deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise _Refused("a mapping key must be a plain value", key_node.start_mark) from None
            if key in seen:
                raise _Refused(
                    f"duplicate key {key!r} (first at line {seen[key].line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: Node, memo: dict[int, int]) -> int:
    """Node count after alias expansion, computed without expanding (shared nodes are memoised)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias counts once; the constructor handles cycles
    size = 1
    if isinstance(node, SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[key] = size
    if size > MAX_EXPANDED_NODES:
        raise _Refused(
            f"the document expands to more than {MAX_EXPANDED_NODES} values "
            "(anchors and aliases used as a bomb?)"
        )
    return size


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def read_yaml(path: Path, *, what: str) -> Any:
    """Parse one YAML document from a file, or raise ValidationFailed describing why not."""
    file = str(path)

    def fail(message: str, hint: str = "", where: str = "") -> ValidationFailed:
        return ValidationFailed([Problem(where, message, file=file, hint=hint)])

    # `citykit init` writes profiles; other inputs are described by their schema.
    create, start = (
        ("create one with `citykit init`", "start from `citykit init PATH`")
        if what == "profile"
        else (f"see `citykit schema --{what}`", f"`citykit schema --{what}` lists its keys")
    )

    try:
        if path.is_dir():
            raise fail(f"is a directory, expected a {what} YAML file")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise fail(f"file is {size} bytes; a {what} is at most {MAX_BYTES} bytes")
        data = path.read_bytes()
    except FileNotFoundError:
        raise fail("file not found", hint=f"check the path, or {create}") from None
    except OSError as error:
        raise fail(f"cannot read file: {error.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise fail(
            f"not UTF-8 text (invalid byte at offset {error.start})", hint="save the file as UTF-8"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        raise fail("contains NUL bytes: this is not a text file")
    try:
        loader = _GuardedLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise fail(f"the {what} is empty", hint=start)
            _expanded_size(node, {})
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except _Refused as error:
        raise fail(error.message, where=_where(error.mark)) from None
    except yaml.MarkedYAMLError as error:
        detail = error.problem or str(error)
        raise fail(f"invalid YAML: {detail}", where=_where(error.problem_mark)) from None
    except yaml.YAMLError as error:
        raise fail(f"invalid YAML: {error}") from None
    except RecursionError:
        raise fail(f"nesting deeper than {MAX_DEPTH} levels") from None
