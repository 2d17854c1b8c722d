"""A namespace deleted by hand: re-created by `up` where data is not protected, refused until the
loss is accepted where it is. Each case checks that citykit names what happened, then that a
plain `citykit up` converges with nothing lost (tests/faults/conftest.py: `converges`). Recovery
times are printed (`-s`) for the closing note of issue 15."""

from __future__ import annotations

import json
import time

from tests.conftest import EXAMPLE
from tests.faults.conftest import City
from tests.faults.helpers import protected
from tests.faults.helpers import report
from tests.faults.helpers import state_files


def test_deleted_namespace_of_a_stateful_component(city: City) -> None:
    from citykit import compiler

    compiled = compiler.compile_city(EXAMPLE, str(city.environment))
    namespace, component = next(
        (obj["metadata"]["namespace"], unit.component.name)
        for unit in compiled.units
        if unit.component.cls.stateful
        for obj in unit.objects
        if obj.get("kind") == "StatefulSet"
    )
    before = city.credentials()
    city.cluster.kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=300s")
    drift = city.citykit("drift", "-o", "json", expect=2)
    found = json.loads(drift.stdout)
    assert found["drift"] is True
    assert any(c["component"] == component for c in found["changes"]), found["changes"]
    said = f"drift: {len(found['changes'])} changes\n{drift.stderr}"
    report(f"deleted namespace {namespace} ({component})", city.converges(before), said)
    city.citykit("drift")


def test_deleted_namespace_where_data_is_protected(city: City) -> None:
    from citykit import compiler

    before = city.credentials()
    with protected(city):
        city.converges(before)  # protection on: the stateful resources protected and retained
        compiled = compiler.compile_city(EXAMPLE, str(city.environment))
        namespace, component = next(
            (obj["metadata"]["namespace"], unit.component.name)
            for unit in compiled.units
            if unit.component.name == "postgis"
            for obj in unit.objects
            if obj.get("kind") == "StatefulSet"
        )
        city.cluster.kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=300s")
        state = state_files(city)
        refused = city.citykit("up", "--yes", expect=2)
        lost = next(line for line in refused.stderr.splitlines() if "no longer has" in line)
        assert component in lost, refused.stderr
        assert "--accept-data-loss" in refused.stderr, refused.stderr
        assert state_files(city) == state, "a refused up wrote state"
        assert city.cluster.kubectl("get", "namespace", namespace, check=False).returncode != 0
        started = time.monotonic()
        accepted = city.citykit("up", "--yes", "--accept-data-loss", timeout=1500)
        assert "will be recreated empty" in accepted.stdout, accepted.stdout
        report(
            f"deleted namespace {namespace} with protectData (refused, then accepted)",
            time.monotonic() - started,
            refused.stderr,
        )
        report("protectData (the next plain up)", city.converges(before))
    report("protectData off again", city.converges(before))
