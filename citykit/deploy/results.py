"""What each deployment action returns: one frozen dataclass per action, read by attribute in the
CLI's tables, and `to_json()` for `--output json`, whose keys and their order are the fields' (the
e2e and faults tiers, and users' scripts, read that document)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

Change = dict[str, str]  # a resource's op, component, type and name (progress.Tracker)
Diagnostic = dict[str, str]  # a warning or failure, with its component and resource


@dataclass(frozen=True)
class Result:
    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class UpResult(Result):
    stack: str
    result: str  # the engine's verdict: "succeeded"
    resources: dict[str, int]  # steps by operation (create, update, same, ...)
    seconds: float
    changes: list[Change]
    failures: list[Diagnostic]
    warnings: list[Diagnostic]
    outputs: dict[str, Any]  # the stack's outputs that are not secrets


@dataclass(frozen=True)
class PreviewResult(Result):
    stack: str
    changes: list[Change]
    counts: dict[str, int]
    changed: bool  # anything besides "same"
    warnings: list[Diagnostic]


@dataclass(frozen=True)
class DriftResult(Result):
    """A refreshing preview: what `up` would change to bring the live cluster back."""

    stack: str
    changes: list[Change]
    counts: dict[str, int]
    warnings: list[Diagnostic]
    drift: bool


@dataclass(frozen=True)
class RefreshResult(Result):
    stack: str
    resources: dict[str, int]
    changes: list[Change]


@dataclass(frozen=True)
class DestroyResult(Result):
    stack: str
    resources: dict[str, int]
    kept_protected: list[str]  # stateful components kept where data is protected
    kept_dependencies: list[str]  # what those still need
    seconds: float
    changes: list[Change]
    failures: list[Diagnostic]
    warnings: list[Diagnostic]


@dataclass(frozen=True)
class OutputsResult:
    """The stack's outputs by name, secrets shown as "[secret]"; the JSON is the mapping."""

    values: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return dict(self.values)
