"""The probe: the one image and the one pod shape every `citykit verify` check runs in.

A probe pod is a short-lived, restricted pod that takes a component's network identity (its
`app.kubernetes.io/name` label, without the `instance` label of its workload selector, so no
ReplicaSet or StatefulSet adopts it and no Service sends it traffic) in that component's
namespace, so the city's own NetworkPolicies decide what it may reach, as they do for the
component. It runs one /bin/sh script and stops."""

from __future__ import annotations

from typing import Any

from citykit.conventions import MANAGED_BY_LABEL
from citykit.conventions import NAME_LABEL
from citykit.conventions import POOL_LABEL
from citykit.conventions import RUNTIME
from citykit.conventions import RUNTIME_LABEL
from citykit.conventions import VERIFY_LABEL
from citykit.images import build
from citykit.plan.planned import Plan
from citykit.plan.probe_image import PROBE_COMPONENT
from citykit.plan.probe_image import PROBE_IMAGE
from citykit.plan.probe_image import PROBE_KEY
from citykit.plan.probe_image import PROBE_LOCAL
from citykit.plan.probe_image import PROBE_UID
from citykit.plan.probe_image import probe_ref

PROBE_TARGET = build.Target(PROBE_COMPONENT, PROBE_KEY, PROBE_LOCAL, PROBE_IMAGE)
PROBE_POOL = "general"  # the pool whose nodes run probe pods (a pool every city has)


def pod(
    plan: Plan,
    *,
    name: str,
    namespace: str,
    identity: str,
    script: str,
    env: dict[str, str],
    secret_env: list[tuple[str, str, str]],
    timeout: int,
    image: str | None = None,
    run_as: int = PROBE_UID,
    writable: tuple[str, ...] = ("/tmp",),
    claims: tuple[tuple[str, str], ...] = (),
    memory_mi: int = 128,
) -> dict[str, Any]:
    """A probe pod manifest. `identity` is the `app.kubernetes.io/name` it carries; `secret_env`
    is (variable, Secret name, key): values reach the script through the environment only.
    A scratch pod of the restore drill gives another `image` and user, and mounts `claims`
    (claim name, path) read-only."""
    mounts: list[dict[str, Any]] = [
        {"name": f"scratch-{i}", "mountPath": path} for i, path in enumerate(writable)
    ]
    volumes: list[dict[str, Any]] = [
        {"name": f"scratch-{i}", "emptyDir": {"sizeLimit": "1Gi"}} for i in range(len(writable))
    ]
    for i, (claim, path) in enumerate(claims):
        mounts.append({"name": f"claim-{i}", "mountPath": path, "readOnly": True})
        volumes.append(
            {"name": f"claim-{i}", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        )
    variables: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    variables += [
        {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for variable, secret, key in secret_env
    ]
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": timeout,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 0,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": run_as,
            "runAsGroup": run_as,
            "fsGroup": run_as,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "probe",
                "image": image or probe_ref(plan),
                "imagePullPolicy": "Never" if plan.environment.local_images else "IfNotPresent",
                "command": ["/bin/sh", "-c", script],
                "env": variables,
                "resources": {
                    "requests": {"cpu": "10m", "memory": "32Mi"},
                    "limits": {"cpu": "500m", "memory": f"{memory_mi}Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
    }
    # Where real nodes run beside simulated ones, probes go to a real one of the general pool
    # (simulated pods run nothing); elsewhere to the general pool, like the city's workloads.
    if plan.environment.simulates_the_rest:
        spec["nodeSelector"] = {RUNTIME_LABEL: RUNTIME, POOL_LABEL: PROBE_POOL}
        spec["tolerations"] = [
            {"key": RUNTIME_LABEL, "operator": "Equal", "value": RUNTIME, "effect": "NoSchedule"}
        ]
    else:
        spec["nodeSelector"] = {POOL_LABEL: PROBE_POOL}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                NAME_LABEL: identity,
                VERIFY_LABEL: plan.slug,
                MANAGED_BY_LABEL: PROBE_COMPONENT,
            },
        },
        "spec": spec,
    }
