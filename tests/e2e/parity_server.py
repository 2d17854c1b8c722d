"""The API server's side of the parity test (tests/e2e/test_parity.py): the objects render
writes, applied for real or in a server-side dry run with the pods their controllers would
create, and the checks that the server accepts them, warns about none and keeps every label
and annotation as rendered."""

from __future__ import annotations

import copy
import json
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field

from citykit import manifests
from citykit.objects.render import Object
from tests.clusters import Cluster

MANAGER = "citykit-parity"

# What dry-run pods and namespaced objects need to exist for real: their namespace, the
# ServiceAccount and PriorityClass a pod names (admission looks them up), and the admission
# policy that is to judge them. Each is itself checked by that real apply.
REAL_KINDS = (
    "Namespace",
    "PriorityClass",
    "ServiceAccount",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
)
CRD_PREFIX = "customresourcedefinition.apiextensions.k8s.io/"
POLICY_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
CANARY_IMAGE = "parity.invalid/refused:1"
ALLOW_LIST_DENIAL = "image registry not on the city's allow-list"


@dataclass(repr=False)
class Server:
    """The cluster, and the cluster-scoped objects this module made on it for real, by kind:
    removed at the end (namespaced ones live in the cities' namespaces)."""

    cluster: Cluster
    created: dict[str, set[str]] = field(default_factory=dict)

    def __repr__(self) -> str:
        # Hypothesis prints the test's arguments: not the cluster's environment variables.
        return f"Server({self.cluster.kubeconfig})"

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        # Not Cluster.kubectl: the documents hold any script, so the encoding is set here.
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(self.cluster.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            check=False,
            env=self.cluster.env,
            timeout=300,
        )

    def apply(self, objects: list[Object], *flags: str) -> subprocess.CompletedProcess[str]:
        # --force-conflicts: a dry run over what another field manager owns must not conflict.
        # --validate=false: kubectl's own schema check costs it 15 ms an object, four times the
        # server's work; the server still checks every field (unknown or duplicate ones come
        # back as warnings, and a warning fails the test).
        return self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--validate=false",
            f"--field-manager={MANAGER}",
            *flags,
            "-f",
            "-",
            stdin=manifests.dump(objects),
        )

    def remember(self, objects: list[Object]) -> None:
        for obj in objects:
            if "namespace" not in obj["metadata"]:
                self.created.setdefault(obj["kind"], set()).add(obj["metadata"]["name"])

    def delete(self, kind: str, names: Iterable[str], *flags: str) -> None:
        chosen = sorted(names)
        if chosen:
            self.kubectl("delete", kind, *chosen, "--ignore-not-found", *flags)


def controller_pods(objects: list[Object]) -> list[Object]:
    """The first pod each workload's controller would create, named and labelled as it would."""
    pods: list[Object] = []
    for obj in objects:
        kind, spec, meta = obj["kind"], obj.get("spec", {}), obj["metadata"]
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            template = spec["template"]
        elif kind == "CronJob":
            template = spec["jobTemplate"]["spec"]["template"]
        else:
            continue
        pod_meta = copy.deepcopy(template.get("metadata", {}))
        pod_spec = copy.deepcopy(template["spec"])
        labels = dict(pod_meta.get("labels", {}))
        name = meta["name"]
        if kind == "StatefulSet":
            pod_name = f"{name}-0"
            labels |= {
                "statefulset.kubernetes.io/pod-name": pod_name,
                "apps.kubernetes.io/pod-index": "0",
                "controller-revision-hash": f"{name}-7c9d8f6b5",
            }
            pod_spec["hostname"] = pod_name
            if spec.get("serviceName"):
                pod_spec["subdomain"] = spec["serviceName"]
            pod_spec["volumes"] = [
                *pod_spec.get("volumes", []),
                *(
                    {
                        "name": claim["metadata"]["name"],
                        "persistentVolumeClaim": {
                            "claimName": f"{claim['metadata']['name']}-{pod_name}"
                        },
                    }
                    for claim in spec.get("volumeClaimTemplates", [])
                ),
            ]
        elif kind in ("CronJob", "Job"):
            # CronJob names jobs by their scheduled minute (eight digits for decades to come).
            job = f"{name}-29000000" if kind == "CronJob" else name
            uid = "00000000-0000-4000-8000-000000000000"
            labels |= {
                "batch.kubernetes.io/job-name": job,
                "job-name": job,
                "batch.kubernetes.io/controller-uid": uid,
                "controller-uid": uid,
            }
            pod_name = f"{job}-parit"
        else:
            labels["pod-template-hash"] = "5d4f8c6b7d"
            pod_name = f"{name}-5d4f8c6b7d-parit"
        pod_meta |= {"name": pod_name, "namespace": meta["namespace"], "labels": labels}
        pods.append({"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec})
    return pods


def _key(obj: Object) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def _described(objects: list[Object], text: str) -> str:
    """The objects a kubectl message names, as YAML (cut), to show beside the message."""
    named = [
        o
        for o in objects
        if f'"{o["metadata"]["name"]}"' in text or f"/{o['metadata']['name']};" in text
    ]
    shown = [manifests.dump([o])[:3000] for o in named[:5]]
    return "\n".join(shown) if shown else "(no object named in the message)"


def _refused(what: str, result: subprocess.CompletedProcess[str], objects: list[Object]) -> str:
    errors = [line for line in result.stderr.splitlines() if not line.startswith("Warning:")]
    text = "\n".join(errors)
    return f"the API server refused what validate accepted ({what}):\n{text}\n\n" + _described(
        objects, text
    )


def _documents(text: str) -> list[Object]:
    """kubectl -o json prints one List, or one object per document."""
    decoder = json.JSONDecoder()
    found: list[Object] = []
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, index = decoder.raw_decode(text, index)
        found.extend(value["items"] if value.get("kind") == "List" else [value])
    return found


def _await_allow_list(server: Server, namespace: str, service_account: str) -> None:
    """Admission takes a policy into effect shortly after it is created: wait for it to refuse a
    foreign image, or a pass below would prove nothing."""
    canary: Object = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "parity-canary", "namespace": namespace},
        "spec": {
            "serviceAccountName": service_account,
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "canary",
                    "image": CANARY_IMAGE,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "runAsUser": 1000,
                    },
                }
            ],
        },
    }
    deadline = time.monotonic() + 30
    while True:
        result = server.apply([canary], "--dry-run=server")
        if ALLOW_LIST_DENIAL in result.stderr:
            return
        assert time.monotonic() < deadline, f"the allow-list never took effect: {result.stderr}"
        time.sleep(0.3)


def assert_no_warnings(result: subprocess.CompletedProcess[str]) -> None:
    """The server's warnings count as refusals: unknown fields, and values it calls invalid
    without refusing them yet (a fractional byte count)."""
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert not warnings, "the API server warned about what validate accepted:\n" + "\n".join(
        warnings
    )


def assert_kept(sent: list[Object], result: subprocess.CompletedProcess[str]) -> None:
    """The server holds every label and annotation as rendered: none changed on the way (YAML
    folding a line break, an escape read differently)."""
    stored = {_key(o): o["metadata"] for o in _documents(result.stdout)}
    for obj in sent:
        meta = stored[_key(obj)]
        for part in ("labels", "annotations"):
            kept = meta.get(part) or {}
            for key, value in (obj["metadata"].get(part) or {}).items():
                assert kept.get(key) == value, (_key(obj), part, key, value, kept.get(key))


def assert_server_accepts(server: Server, objects: list[Object]) -> None:
    real = [o for o in objects if o["kind"] in REAL_KINDS]
    server.remember(real)
    policies = [o for o in real if o["kind"] in POLICY_KINDS]
    try:
        result = server.apply(real, "-o", "json")
        assert result.returncode == 0, _refused("applied for real", result, real)
        assert_no_warnings(result)
        assert_kept(real, result)
        binding = next(o for o in policies if o["kind"] == "ValidatingAdmissionPolicyBinding")
        selected = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]
        accounts = [o for o in real if o["kind"] == "ServiceAccount"]
        account = next(a for a in accounts if a["metadata"]["namespace"] in selected["values"])
        _await_allow_list(server, account["metadata"]["namespace"], account["metadata"]["name"])

        rest = [o for o in objects if o["kind"] not in REAL_KINDS] + controller_pods(objects)
        result = server.apply(rest, "--dry-run=server", "-o", "json")
        assert result.returncode == 0, _refused("server-side dry run", result, rest)
        assert_no_warnings(result)
        assert_kept(rest, result)
    finally:
        # Another city's policy could judge pods in a namespace both cities name.
        for kind in POLICY_KINDS:
            policy_names = (o["metadata"]["name"] for o in policies if o["kind"] == kind)
            server.delete(kind, policy_names, "--wait=false")
