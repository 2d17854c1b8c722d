"""The component contract: a component is data (class attributes) plus one small pure method.

A component is one implementation of a capability (`emqx` implements `device-broker`). It declares
its reference-model layer, what capabilities it requires and conflicts with, its images, its
settings model (which becomes part of the profile schema), its sizing rules, the ports it serves,
how readiness is judged, and its templates under `templates/<name>/`. Everything cross-cutting
(labels, namespaces, hardening, network policies, monitoring) is derived from these declarations
by the compiler, never written per component. What its `values()` adds for its templates is
computed from a typed build context (`build.py`: the plan, itself, its peers read from their own
declarations) into typed template values (`template_values.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import ClassVar
from typing import Literal

from pydantic import Field

# The build context, the declarations, the sizing rules and the template values are modules of
# their own; re-exported here as the contract a blueprint imports.
from citykit.contract.build import BuildContext as BuildContext
from citykit.contract.build import Peer as Peer
from citykit.contract.declarations import ApiAccess as ApiAccess
from citykit.contract.declarations import Backup as Backup
from citykit.contract.declarations import Check as Check
from citykit.contract.declarations import CheckSkip as CheckSkip
from citykit.contract.declarations import Database as Database
from citykit.contract.declarations import Image as Image
from citykit.contract.declarations import LocalImage as LocalImage
from citykit.contract.declarations import Metrics as Metrics
from citykit.contract.declarations import PodSecurityException as PodSecurityException
from citykit.contract.declarations import Port as Port
from citykit.contract.declarations import Probe as Probe
from citykit.contract.declarations import Resources as Resources
from citykit.contract.declarations import RestoreDrill as RestoreDrill
from citykit.contract.declarations import Retention as Retention
from citykit.contract.declarations import SecretSpec as SecretSpec
from citykit.contract.declarations import Workload as Workload
from citykit.contract.layers import Layer
from citykit.contract.model import Model
from citykit.contract.sizing import Scale as Scale
from citykit.contract.sizing import SizingRule as SizingRule
from citykit.contract.template_values import FieldEnv as FieldEnv
from citykit.contract.template_values import InitContainer as InitContainer
from citykit.contract.template_values import SecretEnv as SecretEnv
from citykit.contract.template_values import TemplateValues as TemplateValues
from citykit.conventions import secret_name
from citykit.errors import CitykitError


class DeclarationError(CitykitError):
    """A component reads one of its own declarations that is not there: a catalog bug."""


class ComponentSettings(Model):
    """Settings every component accepts under `layers.<layer>.<capability>` in the profile."""

    enabled: bool = Field(True, description="Deploy this capability. Set false to leave it out.")


class Component:
    """Base class of every component. Subclasses set the class attributes; most need no code."""

    name: ClassVar[str]
    capability: ClassVar[str]
    layer: ClassVar[Layer]
    summary: ClassVar[str]
    # The implementation chosen when the profile does not name one.
    default: ClassVar[bool] = True
    # Whether the capability is deployed when the profile does not mention it (read from the
    # default implementation).
    enabled_by_default: ClassVar[bool] = True
    requires: ClassVar[tuple[str, ...]] = ()
    # Capabilities the component connects to when the plan has them, without needing them: like
    # `requires` for ordering, network policies and deployment, but never a plan error when off.
    uses: ClassVar[tuple[str, ...]] = ()
    # Capabilities required only where the component's `Workload.replicas` figure is above one
    # (a replicated Loki keeps its logs in the data lake): there like `requires`, a plan problem
    # when off; no edge at all where the component runs single.
    replicated_requires: ClassVar[tuple[str, ...]] = ()
    # A foundation component (zones and namespaces) is a dependency of every other component.
    foundation: ClassVar[bool] = False
    conflicts: ClassVar[tuple[str, ...]] = ()
    images: ClassVar[Mapping[str, Image]] = {}
    # Recipes for building `images` locally from packages, keyed like `images` (citykit/images).
    local_images: ClassVar[Mapping[str, LocalImage]] = {}
    Settings: ClassVar[type[ComponentSettings]] = ComponentSettings
    sizing: ClassVar[tuple[SizingRule, ...]] = ()
    ports: ClassVar[tuple[Port, ...]] = ()
    resources: ClassVar[Resources] = Resources()
    secrets: ClassVar[tuple[SecretSpec, ...]] = ()
    # The database it serves its clients (a relational store), which they read through their
    # build context rather than by name.
    database: ClassVar[Database | None] = None
    # The replicas agree by majority (Raft, erasure-coded writes): the derived disruption budget
    # keeps a majority running as well as all but one, so two replicas may lose none.
    quorum: ClassVar[bool] = False
    # Stateful components keep data in PersistentVolumeClaims: protected from destroy in
    # environments with protectData, and backed up by the operations system.
    stateful: ClassVar[bool] = False
    metrics: ClassVar[Metrics | None] = None
    api_access: ClassVar[tuple[ApiAccess, ...]] = ()
    exceptions: ClassVar[tuple[PodSecurityException, ...]] = ()
    # How deployment judges readiness: "rollout" (workload controllers' own status), "exists"
    # (config-only objects).
    readiness: ClassVar[Literal["rollout", "exists"]] = "rollout"
    # The node pool the pods run on: general nodes, GPU/NPU nodes or district edge nodes (the
    # last two are tainted, so only components that ask for them land there).
    pool: ClassVar[Literal["general", "gpu", "edge"]] = "general"
    workload: ClassVar[Workload | None] = None
    backup: ClassVar[Backup | None] = None
    # What `citykit verify` runs against the deployed component (see `Check`).
    checks: ClassVar[tuple[Check, ...]] = ()
    checkov_skips: ClassVar[tuple[CheckSkip, ...]] = ()
    docs: ClassVar[str] = ""
    # What running the component as a real container (environment `local`) showed, and what was
    # changed for it: shown on its docs page under "Running for real".
    real_run: ClassVar[str] = ""

    @classmethod
    def template_dir(cls) -> str:
        return cls.name

    @classmethod
    def port(cls, name: str) -> int:
        """The number of one of its declared ports (its own configuration names it so)."""
        for port in cls.ports:
            if port.name == name:
                return port.port
        raise DeclarationError(
            f"{cls.name} reads its port {name!r}, which it does not declare "
            f"(it declares {', '.join(p.name for p in cls.ports) or 'none'})"
        )

    @classmethod
    def secret(cls, suffix: str) -> str:
        """The name of one of its declared Secrets."""
        if all(spec.name != suffix for spec in cls.secrets):
            raise DeclarationError(f"{cls.name} reads a Secret {suffix!r} it does not declare")
        return secret_name(cls.name, suffix)

    @classmethod
    def secret_env(cls, variable: str, suffix: str, key: str) -> SecretEnv:
        """`variable` set from `key` of its declared Secret `suffix`."""
        name = cls.secret(suffix)
        if not any(spec.name == suffix and key in spec.keys for spec in cls.secrets):
            raise DeclarationError(f"{cls.name} reads key {key!r} its Secret {name} does not have")
        return SecretEnv(variable, name, key)

    def values(self, build: BuildContext[Any, Any]) -> TemplateValues:
        """What the templates add to the declarations for this build (`x` in them), computed
        from the build context. Pure; default none."""
        return TemplateValues()

    def standard_workload(self, build: BuildContext[Any, Any]) -> bool:
        """Whether the shared templates render the declared `workload` for this build. A
        component whose topology follows its planned figures answers from them and renders its
        other form from its own templates (VictoriaMetrics: a single node where `replicas` is
        one, its cluster version above). Pure; default: wherever a workload is declared."""
        return True

    def check_env(self, plan: Any) -> Mapping[str, str]:
        """Extra variables for this component's `checks`, computed from the plan (the gateway's
        route table, the city's realm). Pure; default none."""
        return {}
