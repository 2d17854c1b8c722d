"""The backup pass: a nightly CronJob and a backup claim for every stateful component that
declares how its data is copied (`Component.backup`)."""

from __future__ import annotations

from typing import Any

from citykit.contract.component import Backup
from citykit.conventions import backup_name
from citykit.conventions import secret_name
from citykit.conventions import service_host
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent


def backups(
    plan: Plan, component: PlannedComponent, objects: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A nightly CronJob and a backup claim for every stateful component that declares how its
    data is copied (`Component.backup`)."""
    backup = component.cls.backup
    if backup is None:
        return objects
    name = backup_name(component.name)
    image = component.image_ref(backup.image, plan.environment.registry_mirror)
    size = next((s.value for s in component.sizing if s.name == "storage_gi"), 10)
    env: list[dict[str, Any]] = [
        {"name": "TARGET", "value": service_host(component.name, component.namespace)}
    ]
    env += [
        {
            "name": variable,
            "valueFrom": {
                "secretKeyRef": {"name": secret_name(component.name, suffix), "key": key}
            },
        }
        for variable, suffix, key in backup.secret_env
    ]
    claim: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": f"{size}Gi"}},
        },
    }
    if plan.environment.storage_class:
        claim["spec"]["storageClassName"] = plan.environment.storage_class
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": "17 2 * * *",
            # A run the controller missed (it was down) still starts up to 4 hours late, before
            # the day's load; later, the next night's run takes over. Without a deadline, 100
            # missed runs stop the CronJob for good.
            "startingDeadlineSeconds": 4 * 3600,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 2,
                    "template": {
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "securityContext": {
                                "runAsUser": 10001,
                                "runAsGroup": 10001,
                                "fsGroup": 10001,
                            },
                            "containers": [
                                {
                                    "name": "backup",
                                    "image": image,
                                    "command": ["/bin/sh", "-c", backup_script(backup)],
                                    "env": env,
                                    # The copy goes to the backup claim; scratch space
                                    # is for the tools' own temporary files.
                                    "resources": {
                                        "requests": {
                                            "cpu": "100m",
                                            "memory": "256Mi",
                                            "ephemeral-storage": "256Mi",
                                        },
                                        "limits": {
                                            "cpu": "500m",
                                            "memory": "512Mi",
                                            "ephemeral-storage": "1Gi",
                                        },
                                    },
                                    "volumeMounts": [
                                        {"name": "backup", "mountPath": "/backup"},
                                        {"name": "tmp", "mountPath": "/tmp"},
                                    ],
                                }
                            ],
                            "volumes": [
                                {"name": "backup", "persistentVolumeClaim": {"claimName": name}},
                                {"name": "tmp", "emptyDir": {}},
                            ],
                        }
                    },
                }
            },
        },
    }
    return [*objects, claim, job]


def backup_script(backup: Backup, directory: str = "/backup") -> str:
    """The declared script; with a retention, then (once it succeeded) the removal of the
    matching files beyond the newest `copies`. The script runs in a subshell of its own, so an
    `exit` in it ends only the copy and its status is the Job's; the subshell is not the left of
    an `&&`, where `set -e` inside it would be ignored."""
    if backup.keep is None:
        return backup.script
    keep = backup.keep
    return (
        f"(\n{backup.script.strip()}\n)\n"
        "status=$?\n"
        'if [ "$status" -eq 0 ]; then\n'
        f"  ls -1t {directory}/{keep.pattern} 2>/dev/null | tail -n +{keep.copies + 1} "
        "| xargs -r rm --\n"
        "fi\n"
        'exit "$status"\n'
    )
