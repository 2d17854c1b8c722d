"""Validation errors as located problems: `file: path: message (hint)`. A pydantic error becomes
readable (unknown keys with the closest allowed one, a mistyped implementation, the field's own
description as the hint); and when a document is merged from several files (`extends:`, an
environment's `profile:` overlay), each problem names the file that wrote the value, at the key
path it has there."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ValidationError

from citykit.errors import Problem
from citykit.input.names import short


def dotted(loc: Sequence[int | str]) -> str:
    """('layers', 'data', 'lake', 'replicas') -> layers.data.lake.replicas; ints as [i]."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def undotted(path: str) -> tuple[int | str, ...]:
    """The inverse of `dotted` (for paths whose keys hold no '.', '[' or ']')."""
    return tuple(
        int(index) if index else key for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path)
    )


@dataclass(frozen=True)
class Source:
    """One file's part of a merged document: its data, and the key path in that file the data
    sits under (an environment's `profile:` overlay merges at the profile's root)."""

    file: str
    data: Any
    under: tuple[str, ...] = ()

    def path(self, loc: Sequence[int | str]) -> str:
        return dotted((*self.under, *loc))


def _writes(data: Any, loc: Sequence[int | str]) -> Literal["no", "sets", "merges"]:
    """What `data` does to the merged value at `loc`: nothing, sets it (a scalar, list or null at
    `loc` or above replaces everything below), or merges a mapping into it."""
    node = data
    for part in loc:
        if not isinstance(node, dict):
            return "sets"
        if part not in node:
            return "no"
        node = node[part]
    return "merges" if isinstance(node, dict) else "sets"


def blame(sources: Sequence[Source], loc: Sequence[int | str]) -> tuple[Source, list[Source]]:
    """The source (merge order, base first) a problem at `loc` belongs to, and the sources whose
    value there it was merged with or overrode."""
    for depth in range(len(loc), -1, -1):
        here = loc[:depth]
        writers = [s for s in reversed(sources) if _writes(s.data, here) != "no"]  # latest first
        if not writers:
            continue
        # What was written before the latest value set (not merged) there no longer counts.
        shaping: list[Source] = []
        for source in writers:
            shaping.append(source)
            if _writes(source.data, here) == "sets":
                break
        if depth == len(loc):
            return shaping[0], shaping[1:] or writers[1:2]
        # Nobody wrote `loc` (a missing key): the first file that wrote the mapping around it.
        return shaping[-1], []
    return sources[-1], []


def _attributed(problem: Problem, loc: Sequence[int | str], sources: Sequence[Source]) -> Problem:
    source, others = blame(sources, loc)
    hint = problem.hint
    if others:
        verb = "merged with" if _writes(source.data, loc) == "merges" else "overrides"
        notes = [f"{verb} {other.path(loc)} in {other.file}" for other in others]
        hint = "; ".join([hint.rstrip("."), *notes] if hint else notes)
    return Problem(source.path(loc), problem.message, file=source.file, hint=hint)


def attribute(problems: Sequence[Problem], sources: Sequence[Source], file: str) -> list[Problem]:
    """Problems located in the merged document `file` (by their dotted paths), moved to the
    sources that wrote them; problems of other files are kept."""
    return [
        _attributed(p, undotted(p.path), sources) if sources and p.file == file else p
        for p in problems
    ]


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


def problems_from(
    error: ValidationError,
    model: type[BaseModel],
    file: str,
    sources: Sequence[Source] = (),
) -> list[Problem]:
    """Readable problems from a pydantic error: path, message, and a hint where one helps. With
    `sources` (the files merged into the document validated, base first), each problem names the
    file that wrote the value, at its path there."""
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
            message = f"{short(item['input'])} is not allowed here"
            hint = _description(model, raw)
        elif kind == "invalid":  # names.checked: its own message and hint
            message = str(ctx["message"])
            hint = str(ctx.get("hint") or _description(model, raw))
        elif kind == "value_error":
            message = str(ctx.get("error", message))
        elif raw:
            hint = _description(model, raw)
        problem = Problem(dotted(shown), message, file=file, hint=hint)
        problems.append(_attributed(problem, shown, sources) if sources else problem)
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
