"""The Pulumi program under the SDK's mock runtime: every rendered object registered once as its
typed resource under the right component, component dependencies equal to the graph's edges,
generated credentials secret, stateful resources protected where the environment says so."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pulumi
import pytest

from citykit import compiler
from citykit.compiler import Compiled
from citykit.conventions import WORKLOAD_KINDS
from citykit.deploy import program
from citykit.deploy import resources
from citykit.deploy.generated import fill_generated
from citykit.deploy.generated import required_secrets
from tests.conftest import EXAMPLE


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.registered: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.registered.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


@dataclass
class Registered:
    name: str
    obj: dict[str, Any]
    opts: pulumi.ResourceOptions
    resource: Any


@dataclass
class Recording:
    mocks: Mocks
    objects: list[Registered]
    components: dict[str, tuple[str, pulumi.ResourceOptions, Any]]  # name -> (type, opts, res)


@pytest.fixture
def record(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recording]:
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="citykit", stack="test", preview=False)
    recording = Recording(mocks, [], {})
    original_create = resources.create
    original_component = pulumi.ComponentResource

    def create(name: str, obj: dict[str, Any], opts: Any) -> Any:
        created = original_create(name, obj, opts)
        recording.objects.append(Registered(name, obj, opts, created))
        return created

    class RecordingComponent(original_component):  # type: ignore[misc, valid-type]
        def __init__(self, t: str, name: str, props: Any = None, opts: Any = None) -> None:
            super().__init__(t, name, props, opts)
            recording.components[name] = (t, opts or pulumi.ResourceOptions(), self)

    monkeypatch.setattr(resources, "create", create)
    monkeypatch.setattr(pulumi, "ComponentResource", RecordingComponent)
    yield recording


def run(compiled: Compiled) -> None:
    generated = fill_generated({}, required_secrets(compiled))

    @pulumi.runtime.test
    def deploy() -> Any:
        outputs = program.deploy_city(
            compiled,
            program.ProgramOptions(
                protect_data=compiled.plan.environment.protect_data, generated=generated
            ),
        )
        return pulumi.Output.from_input(outputs)

    deploy()


def key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_object_is_one_typed_resource_under_its_component(
    record: Recording, env: str
) -> None:
    compiled = compiler.compile_city(EXAMPLE, env)
    run(compiled)
    expected = {key(o): unit.component.name for unit in compiled.units for o in unit.objects}
    seen = [key(r.obj) for r in record.objects]
    assert sorted(seen) == sorted(expected)  # each exactly once
    registered_types = {(a.typ, a.name) for a in record.mocks.registered}
    # Kinds the city's own CRDs define are custom resources; every other kind has its SDK class.
    custom = {
        (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
        for crd in compiled.objects()
        if crd["kind"] == "CustomResourceDefinition"
        for version in crd["spec"]["versions"]
    }
    assert custom, "the example city ships cert-manager's CRDs"
    for item in record.objects:
        api_kind = (item.obj["apiVersion"], item.obj["kind"])
        token = resources.type_token(*api_kind)
        assert (token, item.name) in registered_types, token
        assert (resources.resource_class(*api_kind) is None) == (api_kind in custom), api_kind
        # Only what owns pods, and namespaces, are deleted in the foreground; anything else,
        # custom resources included, at once (see program.prepare).
        policy = item.obj["metadata"]["annotations"].get(program.DELETION_PROPAGATION)
        foreground = item.obj["kind"] in (*WORKLOAD_KINDS, "Namespace")
        assert policy == (None if foreground else "background"), api_kind
        parent = item.opts.parent
        component = expected[key(item.obj)]
        assert parent is record.components[component][2]
        assert record.components[component][0] == program.component_type(component)


def test_components_sit_in_their_layers(record: Recording) -> None:
    compiled = compiler.compile_city(EXAMPLE, "dev")
    run(compiled)
    for unit in compiled.units:
        name = unit.component.name
        token, opts, _ = record.components[name]
        layer = unit.component.layer
        assert token == program.component_type(name)
        assert opts.parent is record.components[layer.key][2]
        assert record.components[layer.key][0] == program.layer_token(layer)


def test_order_is_what_kubernetes_needs(record: Recording) -> None:
    """Namespaces before their contents; CRDs (and, for other components, the controller that
    ships them) before custom resources; a workload after the rest of its component and after
    the workloads of every component it requires; nothing else waits."""
    compiled = compiler.compile_city(EXAMPLE, "dev")
    run(compiled)
    by_resource = {id(r.resource): r for r in record.objects}
    unit_of = {key(o): u for u in compiled.units for o in u.objects}
    workloads_of: dict[str, set[int]] = {}
    for item in record.objects:
        if item.obj["kind"] in program.WORKLOAD_KINDS:
            workloads_of.setdefault(unit_of[key(item.obj)].component.name, set()).add(
                id(item.resource)
            )
    crd_groups = {
        o["spec"]["group"]: u.component.name
        for u in compiled.units
        for o in u.objects
        if o["kind"] == "CustomResourceDefinition"
    }
    checked_workloads = 0
    for item in record.objects:
        unit = unit_of[key(item.obj)]
        depends = {id(d) for d in item.opts.depends_on or []}
        assert all(d in by_resource for d in depends), "depends only on objects, not components"
        kinds = {by_resource[d].obj["kind"] for d in depends}
        namespace = item.obj["metadata"].get("namespace")
        namespaces = {
            by_resource[d].obj["metadata"]["name"]
            for d in depends
            if by_resource[d].obj["kind"] == "Namespace"
        }
        if namespace and any(
            o["kind"] == "Namespace" and o["metadata"]["name"] == namespace
            for o in compiled.objects()
        ):
            assert namespace in namespaces, item.name
        group = item.obj["apiVersion"].rpartition("/")[0]
        owner = crd_groups.get(group)
        if owner is not None:
            assert "CustomResourceDefinition" in kinds, item.name
            if owner != unit.component.name:
                everything = {
                    id(r.resource)
                    for r in record.objects
                    if unit_of[key(r.obj)].component.name == owner and r.obj["kind"] != "Namespace"
                }
                assert everything <= depends, item.name
        if item.obj["kind"] in program.WORKLOAD_KINDS:
            checked_workloads += 1
            for required in unit.component.requires:
                assert workloads_of.get(required, set()) <= depends, (item.name, required)
            own = {
                id(r.resource)
                for r in record.objects
                if unit_of[key(r.obj)] is unit
                and r.obj["kind"] not in (*program.WORKLOAD_KINDS, "Namespace")
                and r.obj["kind"] != "CustomResourceDefinition"
            }
            assert own <= depends, item.name
        elif owner is None:
            # Nothing but a workload waits for another component's readiness.
            assert kinds <= {"Namespace"}, (item.name, kinds)
    assert checked_workloads > 20


def test_generated_credentials_are_pulumi_secrets(record: Recording) -> None:
    compiled = compiler.compile_city(EXAMPLE, "dev")
    run(compiled)
    generated = [
        r
        for r in record.objects
        if r.obj["kind"] == "Secret"
        and "citykit.io/generate" in r.obj["metadata"].get("annotations", {})
    ]
    assert generated
    checks = []
    for item in generated:
        assert isinstance(item.obj["stringData"], pulumi.Output)
        assert {"data", "stringData"} <= set(item.opts.additional_secret_outputs or [])
        checks.append(item.obj["stringData"])

    @pulumi.runtime.test
    def all_secret() -> Any:
        async def check() -> None:
            for output in checks:
                assert await output.is_secret()

        return pulumi.Output.from_input(check())

    all_secret()


@pytest.mark.parametrize(("env", "protected"), [("dev", False), ("prod", True)])
def test_stateful_data_is_protected_only_where_the_environment_says(
    record: Recording, env: str, protected: bool
) -> None:
    compiled = compiler.compile_city(EXAMPLE, env)
    run(compiled)
    stateful = {u.component.name for u in compiled.units if u.component.cls.stateful}
    assert stateful
    for item in record.objects:
        component = item.opts.parent._name
        kind = item.obj["kind"]
        expect = protected and component in stateful and kind in program.STATEFUL_KINDS
        assert bool(item.opts.protect) == expect, (component, kind)
        if kind == "StatefulSet":
            policy = item.obj["spec"]["persistentVolumeClaimRetentionPolicy"]
            assert policy["whenDeleted"] == ("Retain" if protected else "Delete")
        retained = kind in ("Namespace", "CustomResourceDefinition") and protected
        assert bool(item.opts.retain_on_delete) == retained, (component, kind)


def test_compiled_objects_are_not_mutated_by_the_program(record: Recording) -> None:
    compiled = compiler.compile_city(EXAMPLE, "dev")
    before = [dict(o) for o in compiled.objects()]
    import json

    snapshot = json.dumps(before, sort_keys=True, default=str)
    run(compiled)
    assert json.dumps([dict(o) for o in compiled.objects()], sort_keys=True, default=str) == (
        snapshot
    )


def test_the_sdks_bookkeeping_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The program replaces `pulumi.log.debug` and the SDK's stack-trace capture
    (engine._skip_sdk_bookkeeping): per resource, three blocking RPCs and engine events, and 2 KB
    of state, that nobody reads. It only works while the SDK's resource registration looks both
    up by name at each call."""
    import inspect

    import pulumi.runtime.resource as sdk_resource

    from citykit.deploy import engine

    source = inspect.getsource(sdk_resource)
    assert "from ..log import debug" not in source and source.count("log.debug(") >= 3
    assert "stack_trace = _get_stack_trace()" in source
    monkeypatch.setattr(pulumi.log, "debug", pulumi.log.debug)  # restored afterwards
    monkeypatch.setattr(sdk_resource, "_get_stack_trace", sdk_resource._get_stack_trace)
    engine._skip_sdk_bookkeeping()
    assert pulumi.log.debug is engine._no_debug_line
    pulumi.log.debug("dropped, not sent: no engine is asked")
    assert list(sdk_resource._get_stack_trace().frames) == []
