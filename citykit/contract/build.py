"""The build context a component's `values()` and `standard_workload()` receive: the plan, the
component as planned, and its peers (what it talks to), each read from the peer's own
declarations. A lookup that cannot succeed (a capability the component does not declare, a port,
Secret or database its peer does not declare) raises a `BuildError` naming both components, as
cdk-eks-blueprints' `ClusterInfo.getRequiredResource` does, instead of rendering an empty value.

The plan's types live in a layer above the contract, so the context is generic in them:
`citykit.objects.build.Build` is `BuildContext[Plan, PlannedComponent]`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Generic
from typing import TypeVar

from citykit.contract.declarations import Database
from citykit.conventions import secret_name
from citykit.conventions import service_host
from citykit.errors import CitykitError

if TYPE_CHECKING:
    from citykit.contract.component import Component

PlanT = TypeVar("PlanT")
PlannedT = TypeVar("PlannedT")


class BuildError(CitykitError):
    """A component reads something of another that it does not declare: a catalog bug."""


@dataclass(frozen=True)
class Peer(Generic[PlannedT]):
    """Another component as `reader` reaches it: its Service, the ports it serves its peers, its
    Secrets and its database, all from its declarations; `planned` is the component as planned,
    for what the plan derives from it (monitoring's scrape and alerting targets)."""

    reader: str
    declared: type[Component]
    namespace: str
    planned: PlannedT

    @property
    def name(self) -> str:
        return self.declared.name

    @property
    def capability(self) -> str:
        return self.declared.capability

    @property
    def host(self) -> str:
        """The cluster DNS name of the peer's Service."""
        return service_host(self.name, self.namespace)

    @property
    def ports(self) -> dict[str, int]:
        """Port numbers by name; those only the peer's own pods reach are left out."""
        return {p.name: p.port for p in self.declared.ports if p.exposed_to != "self"}

    def _fail(self, what: str, kind: str, declared: list[str]) -> BuildError:
        return BuildError(
            f"{self.reader} reads {what} of {self.name} ({self.capability}); its declared "
            f"{kind}: {', '.join(declared) or 'none'}"
        )

    def port(self, name: str | None = None) -> int:
        """The named port, or the first: the component's main port."""
        ports = self.ports
        if name is None and ports:
            return next(iter(ports.values()))
        if name is None or name not in ports:
            raise self._fail(f"port {name!r}" if name else "a port", "ports", list(ports))
        return ports[name]

    def address(self, port: str | None = None) -> str:
        """`host:port` of the named port, or of the first."""
        return f"{self.host}:{self.port(port)}"

    def url(self, port: str | None = None, scheme: str = "http") -> str:
        return f"{scheme}://{self.address(port)}"

    def secret(self, suffix: str) -> str:
        """The name of one of the peer's Secrets (in the peer's namespace)."""
        declared = [s.name for s in self.declared.secrets]
        if suffix not in declared:
            raise self._fail(f"Secret {suffix!r}", "Secrets", declared)
        return secret_name(self.name, suffix)

    @property
    def database(self) -> Database:
        if self.declared.database is None:
            raise self._fail("a database", "database", [])
        return self.declared.database

    def jdbc_url(self) -> str:
        """`jdbc:<subprotocol>://<host>:<port>/<database>` of the database the peer serves."""
        database = self.database
        return f"jdbc:{database.jdbc}://{self.address(database.port)}/{database.name}"


@dataclass(frozen=True)
class BuildContext(Generic[PlanT, PlannedT]):
    """What a component is built from: the plan, itself as planned (`component`) and as
    declared (`declared`), and its peers by capability (the components it talks to, as the plan's
    graph has them: its `requires`, its `uses` that are on, its `replicated_requires` where it
    runs more than one replica). Its `same_as` Secrets are checked at once: each copies one its
    peer declares, with every key it copies."""

    plan: PlanT
    component: PlannedT
    declared: type[Component]
    peers: Mapping[str, Peer[PlannedT]]

    def __post_init__(self) -> None:
        for spec in self.declared.secrets:
            if spec.same_as is None:
                continue
            capability, suffix = spec.same_as.split(":")
            source = self.optional_peer(capability)
            if source is None:
                continue  # no connection, no copy (a single Loki has no data lake)
            keys = next((s.keys for s in source.declared.secrets if s.name == suffix), None)
            if keys is None or not set(spec.keys) <= set(keys):
                raise source._fail(
                    f"Secret {suffix!r} with keys {', '.join(spec.keys)} (its own Secret "
                    f"{spec.name!r} is `same_as` it)",
                    "Secrets",
                    [f"{s.name} ({', '.join(s.keys)})" for s in source.declared.secrets],
                )

    def _declares(self, capability: str) -> bool:
        cls = self.declared
        return capability in (*cls.requires, *cls.uses, *cls.replicated_requires)

    def peer(self, capability: str) -> Peer[PlannedT]:
        """The peer providing `capability`; it must be there (a required one always is)."""
        found = self.optional_peer(capability)
        if found is None:
            raise BuildError(
                f"{self.declared.name} reads {capability}, which is not its peer in this plan "
                "(a capability it only uses, or requires only when replicated, may be off: "
                "read it with optional_peer)"
            )
        return found

    def optional_peer(self, capability: str) -> Peer[PlannedT] | None:
        """The peer providing a capability the component `uses` (or requires only when
        replicated), None where the plan has no such connection."""
        if not self._declares(capability):
            raise BuildError(
                f"{self.declared.name} reads {capability} without declaring it in `requires`, "
                "`uses` or `replicated_requires`: declare it, so that the plan orders the two and "
                "the network policies let them connect"
            )
        return self.peers.get(capability)
