"""An admission policy rejecting one object of the city: `up` names the object and the policy,
then, the policy removed, a plain `citykit up` converges with nothing lost
(tests/faults/conftest.py: `converges`). Recovery times are printed (`-s`) for the closing note of
issue 15."""

from __future__ import annotations

import json
import time

from tests.conftest import EXAMPLE
from tests.faults.conftest import City
from tests.faults.helpers import report

POLICY = "citykit-faults-freeze"


def test_admission_policy_rejects_one_object(city: City) -> None:
    """A ValidatingAdmissionPolicy rejects one ConfigMap of the city: `up` names the object and
    the policy, and the rest of the city stays as it is."""
    from citykit import compiler

    compiled = compiler.compile_city(EXAMPLE, str(city.environment))
    target = next(
        obj["metadata"]
        for unit in compiled.units
        if unit.component.name == "grafana"
        for obj in unit.objects
        if obj["kind"] == "ConfigMap"
    )
    namespace, name = target["namespace"], target["name"]
    before = city.credentials()
    assert city.wait_all_ready() == []
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["configmaps"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": f"object.metadata.name != '{name}'",
                    "message": "frozen by the change board",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY},
        "spec": {
            "policyName": POLICY,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    city.cluster.kubectl("apply", "-f", "-", input_text=json.dumps(policy))
    city.cluster.kubectl("apply", "-f", "-", input_text=json.dumps(binding))
    try:
        city.cluster.kubectl("delete", "configmap", "-n", namespace, name)
        deadline = time.monotonic() + 30
        while True:  # the policy takes effect once the API server has loaded it
            probe = city.cluster.kubectl(
                "create", "configmap", "-n", namespace, name, "--dry-run=server", check=False
            )
            if POLICY in probe.stderr or time.monotonic() > deadline:
                break
            time.sleep(1)
        deployments = city.cluster.get_json(
            "deployments", "--all-namespaces", "-l", "app.kubernetes.io/part-of=yuhang"
        )["items"]
        failed = city.citykit("up", "--yes", expect=1)
        said = failed.stdout + failed.stderr
        assert f"{namespace}/{name}" in said and POLICY in said, said
        assert "frozen by the change board" in said, said
        # Nothing rolled back: every Deployment still there, every component Ready as before.
        after = city.cluster.get_json(
            "deployments", "--all-namespaces", "-l", "app.kubernetes.io/part-of=yuhang"
        )["items"]
        assert {d["metadata"]["uid"] for d in after} == {d["metadata"]["uid"] for d in deployments}
        rows = {row["component"]: row["state"] for row in city.status()}
        assert rows.pop("grafana") == "missing"  # its rejected ConfigMap
        assert set(rows.values()) == {"ready"}, rows
        report("admission policy rejects one object", 0, failed.stderr)
    finally:
        city.cluster.kubectl("delete", "validatingadmissionpolicybinding", POLICY, check=False)
        city.cluster.kubectl("delete", "validatingadmissionpolicy", POLICY, check=False)
    report("admission policy (the next up, policy removed)", city.converges(before))
