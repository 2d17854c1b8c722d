"""What a component's `values()` gives its templates (`x` in them): the keys the shared workload
template (`templates/_workload/`) reads, as the fields of a frozen dataclass, so a misspelt key
fails where it is written (a TypeError at construction) instead of being ignored by a template's
default; and, in `own`, what the component's own templates read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from typing import Any


@dataclass(frozen=True)
class SecretEnv:
    """An environment variable set from one key of a Secret (`secretKeyRef`)."""

    name: str
    secret: str
    key: str


@dataclass(frozen=True)
class FieldEnv:
    """An environment variable set from a field of the pod itself (`fieldRef`: its name, IP or
    namespace), which later values may refer to as `$(NAME)`."""

    name: str
    field: str


@dataclass(frozen=True)
class InitContainer:
    """A container run to completion before the main one at every start (Loki's bucket in the
    data lake), with the workload's resources and scratch directories."""

    name: str
    image: str
    args: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: tuple[SecretEnv, ...] = ()


@dataclass(frozen=True)
class TemplateValues:
    """A component's additions to its declared `Workload` in the shared template, and the values
    of its own templates. Plain data: strings, numbers, mappings and tuples of them."""

    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: tuple[SecretEnv, ...] = ()
    field_env: tuple[FieldEnv, ...] = ()
    # Files of the ConfigMap mounted at `Workload.config_path`.
    config: Mapping[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()  # after `Workload.args`
    init_containers: tuple[InitContainer, ...] = ()
    # False for software that keeps its Service's endpoints itself (Patroni points `postgis` at
    # the primary): the Service then has no selector.
    service_selector: bool = True
    # What the component's own templates read, as `x.<key>`; a key may not be one of the fields
    # above, which the shared template reads.
    own: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        hidden = sorted({f.name for f in fields(self)} & self.own.keys())
        if hidden:
            raise TypeError(f"own template values {hidden} would hide the shared template's")

    def for_templates(self) -> dict[str, Any]:
        """`x` as templates read it: the fields above and the `own` keys side by side, mappings
        as plain dicts (a template writes them out as JSON)."""
        shared = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "own"}
        plain = {k: dict(v) if isinstance(v, Mapping) else v for k, v in shared.items()}
        return plain | dict(self.own)
