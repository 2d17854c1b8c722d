"""Reading YAML input defensively and turning validation errors into located problems.

Any file whatsoever (empty, binary, not UTF-8, huge, deeply nested, alias bombs, duplicate keys)
ends as a `ValidationFailed` naming the file and a path, never as a Python traceback."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, SequenceNode

from citykit.errors import Problem, ValidationFailed

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

    try:
        if path.is_dir():
            raise fail(f"is a directory, expected a {what} YAML file")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise fail(f"file is {size} bytes; a {what} is at most {MAX_BYTES} bytes")
        data = path.read_bytes()
    except FileNotFoundError:
        raise fail(
            "file not found", hint="check the path, or create one with `citykit init`"
        ) from None
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
                raise fail(f"the {what} is empty", hint="start from `citykit init PATH`")
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


def dotted(loc: tuple[int | str, ...]) -> str:
    """('layers', 'data', 'lake', 'replicas') -> layers.data.lake.replicas; ints as [i]."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Every BaseModel class inside an annotation (Optional, list, unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += _models_in(arg)
    return found


def _tag_of(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("implementation")
    return field.default if field is not None else None


def _field_of(model: type[BaseModel], key: str) -> Any:
    for name, field in model.model_fields.items():
        if (field.alias or name) == key:
            return field
    return None


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class a raw pydantic location points into (tags select union members)."""
    candidates = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        tagged = [m for m in candidates if _tag_of(m) == part]
        if tagged:
            candidates = tagged
            continue
        following: list[type[BaseModel]] = []
        for candidate in candidates:
            field = _field_of(candidate, str(part))
            if field is not None:
                following += _models_in(field.annotation)
        if not following:
            return None
        candidates = following
    return candidates[0]


def _description(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    parent = _model_at(model, loc[:-1])
    field = _field_of(parent, str(loc[-1])) if parent is not None and loc else None
    return str(field.description or "") if field is not None else ""


def _keys_of(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def problems_from(error: ValidationError, model: type[BaseModel], file: str) -> list[Problem]:
    """Readable problems from a pydantic error: path, message, and a hint where one helps."""
    problems: list[Problem] = []
    for item in error.errors(include_url=False):
        raw = tuple(item["loc"])
        # Discriminated unions add the implementation name to the location; users never wrote
        # that key, so it is dropped from the path they see.
        shown = tuple(
            p
            for i, p in enumerate(raw)
            if not (i == 3 and raw[0] == "layers" and _is_tag(model, raw[:i], p))
        )
        kind = item["type"]
        ctx = item.get("ctx", {})
        message, hint = item["msg"], ""
        if kind == "extra_forbidden":
            key = str(raw[-1])
            allowed = _keys_of(_model_at(model, raw[:-1]))
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
            message = f"unknown key {key!r}"
            hint = f"did you mean {close[0]!r}?" if close else "allowed keys: " + ", ".join(allowed)
        elif kind == "missing":
            message = "required key is missing"
            hint = _description(model, raw)
        elif kind == "union_tag_invalid":
            shown = (*shown, "implementation")
            names = [n.strip(" '") for n in str(ctx.get("expected_tags", "")).split(",")]
            close = difflib.get_close_matches(str(ctx.get("tag")), names, n=1, cutoff=0.5)
            message = f"unknown implementation {ctx.get('tag')!r}"
            hint = f"did you mean {close[0]!r}?" if close else f"choose one of: {', '.join(names)}"
        elif kind in ("model_type", "model_attributes_type", "dict_type") and not raw:
            message = "expected a mapping of keys to values at the top level"
        elif kind == "model_type":
            message = "expected a mapping of keys to values"
        elif kind == "string_pattern_mismatch":
            message = f"{item['input']!r} is not allowed here"
            hint = _description(model, raw)
        elif kind == "value_error":
            message = str(ctx.get("error", message))
        elif raw:
            hint = _description(model, raw)
        problems.append(Problem(dotted(shown), message, file=file, hint=hint))
    return problems


def _is_tag(model: type[BaseModel], before: tuple[int | str, ...], part: int | str) -> bool:
    parent = _model_at(model, before)
    return (
        parent is not None
        and _field_of(parent, str(part)) is None
        and any(_tag_of(m) == part for m in _models_in_field(model, before))
    )


def _models_in_field(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[type[BaseModel]]:
    parent = _model_at(model, loc[:-1])
    field = _field_of(parent, str(loc[-1])) if parent is not None and loc else None
    return _models_in(field.annotation) if field is not None else []
