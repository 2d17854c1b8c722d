"""The build context of one planned component (`citykit.contract.build`), made from the plan: what
`values()` and `standard_workload()` receive when its objects are rendered, and what a component
reads its peers from elsewhere (its `check_env`)."""

from __future__ import annotations

from citykit.contract.build import BuildContext
from citykit.contract.build import Peer
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent

Build = BuildContext[Plan, PlannedComponent]
CityPeer = Peer[PlannedComponent]


def build_context(plan: Plan, component: PlannedComponent) -> Build:
    """The context of `component`: its peers are the components the plan's graph says it talks
    to (the same edges the network policies allow), by capability."""
    peers: dict[str, CityPeer] = {}
    for name in component.peers:
        other = plan.by_name(name)
        peers[other.capability] = Peer(component.name, other.cls, other.namespace, other)
    return BuildContext(plan, component, component.cls, peers)


def build_of(plan: Plan, name: str) -> Build:
    """The context of the planned component `name`."""
    return build_context(plan, plan.by_name(name))
