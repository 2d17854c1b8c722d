"""The restore drill (`citykit verify --restore-drill`): for each stateful component that runs for
real and declares how (`Backup.drill`), write a marker, run its backup Job now, restore the newest
backup into a scratch instance and look for the marker there.

等保2.0's backup-and-recovery family asks for regular restore drills. The last drill's result is
kept in the state directory (`drills/<city>-<env>.json`); `citykit compliance` reads it, and a
passed drill of every drillable component in the last 90 days closes that gap."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from citykit import paths
from citykit.compiler import Compiled
from citykit.conventions import COMPONENT_LABEL
from citykit.conventions import RUNTIME_LABEL
from citykit.conventions import VERIFY_LABEL
from citykit.conventions import backup_name
from citykit.conventions import secret_name
from citykit.deploy.engine import ClusterAccess
from citykit.deploy.engine import cluster_access
from citykit.deploy.engine import kubectl
from citykit.deploy.engine import stack_name
from citykit.deploy.status import where_pods_run
from citykit.plan.planned import Plan
from citykit.plan.planned import PlannedComponent
from citykit.plan.probe_image import PROBE_COMPONENT
from citykit.verify import probe
from citykit.verify import runner
from citykit.verify.checks import Outcome
from citykit.verify.checks import PodRun
from citykit.verify.checks import check_env
from citykit.verify.checks import functional_script

CHECK = "restore drill: the newest backup restores and holds the marker"
JOB_TIMEOUT = 600
RECENT_DAYS = 90


def record_path(plan: Plan) -> Path:
    return paths.state_dir() / "drills" / f"{stack_name(plan)}.json"


def last_record(plan: Plan) -> dict[str, Any] | None:
    """The last drill of this city and environment, or None (never run, or unreadable)."""
    try:
        data = json.loads(record_path(plan).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def drillable(plan: Plan) -> list[PlannedComponent]:
    return [
        c for c in plan.components if c.cls.backup is not None and c.cls.backup.drill is not None
    ]


def _live_cronjob(access: ClusterAccess, component: PlannedComponent) -> dict[str, Any] | None:
    """The deployed backup CronJob: the drill runs what is deployed, not what would be."""
    got = kubectl(
        access,
        "get",
        "cronjob",
        "-n",
        component.namespace,
        backup_name(component.name),
        "-o",
        "json",
    )
    return json.loads(got.stdout) if got.returncode == 0 else None


def _skip_reason(
    plan: Plan, cronjob: dict[str, Any] | None, runs: dict[str, str], real_nodes: bool
) -> str | None:
    if cronjob is None:
        return "failed: its backup CronJob is not in the cluster (deploy with `citykit up`)"
    if not real_nodes:
        return "simulated: the cluster has no node that runs containers"
    if runs.get(cronjob["metadata"]["labels"][COMPONENT_LABEL]) != "real":
        return "simulated: its pods run on kwok nodes"
    selector = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"].get("nodeSelector", {})
    if plan.environment.simulates_the_rest and RUNTIME_LABEL not in selector:
        return "simulated: its backup image is not built locally, so the Job runs on kwok"
    return None


def _run_job(access: ClusterAccess, job: dict[str, Any]) -> tuple[bool, str]:
    """Create the Job, wait for it to complete or fail, then delete it (and its pods)."""
    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    created = kubectl(access, "create", "-f", "-", stdin=json.dumps(job))
    if created.returncode != 0:
        return False, f"backup Job not created: {created.stderr.strip()}"
    try:
        deadline = time.monotonic() + JOB_TIMEOUT
        while time.monotonic() < deadline:
            got = kubectl(access, "get", "job", "-n", namespace, name, "-o", "json")
            if got.returncode == 0:
                for condition in json.loads(got.stdout).get("status", {}).get("conditions") or []:
                    if condition.get("status") != "True":
                        continue
                    if condition.get("type") == "Complete":
                        return True, "backup Job complete"
                    if condition.get("type") == "Failed":
                        logs = kubectl(access, "logs", "-n", namespace, f"job/{name}", "--tail=5")
                        return False, f"backup Job failed: {logs.stdout.strip()[-300:]}"
            time.sleep(2)
        return False, f"backup Job did not finish in {JOB_TIMEOUT}s"
    finally:
        kubectl(
            access,
            "delete",
            "job",
            "-n",
            namespace,
            name,
            "--ignore-not-found",
            "--wait=true",
            "--timeout=120s",
            "--cascade=foreground",
        )


def _job_from(cronjob: dict[str, Any], plan: Plan, name: str) -> dict[str, Any]:
    template = json.loads(json.dumps(cronjob["spec"]["jobTemplate"]))
    spec = template["spec"]
    spec["backoffLimit"] = 0
    spec["ttlSecondsAfterFinished"] = 300
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": cronjob["metadata"]["namespace"],
            "labels": {VERIFY_LABEL: plan.slug},
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
        },
        "spec": spec,
    }


def drill_component(
    compiled: Compiled,
    access: ClusterAccess,
    component: PlannedComponent,
    run_id: str,
    watch: runner.PodWatch,
    say: Callable[[str], None],
) -> Outcome:
    plan = compiled.plan
    backup = component.cls.backup
    assert backup is not None and backup.drill is not None
    drill = backup.drill
    cronjob = _live_cronjob(access, component)
    assert cronjob is not None
    started = time.monotonic()
    marker = f"citykit-verify-{run_id}"
    env = {**check_env(plan, component, run_id, {component.name}), "MARKER": marker}

    def outcome(status: str, detail: str) -> Outcome:
        return Outcome(
            component.name,
            component.layer.key,
            CHECK,
            "passed" if status == "passed" else "failed",
            detail,
            time.monotonic() - started,
            "drill",
        )

    say(f"restore drill {component.name}: writing the marker")
    mark = runner.run_pod(
        access,
        watch,
        PodRun(
            probe.pod(
                plan,
                name=f"verify-drill-mark-{component.name}-{run_id}"[:63],
                namespace=component.namespace,
                identity=component.name,
                script=functional_script(component, drill.mark),
                env=env,
                secret_env=[(v, secret_name(component.name, s), k) for v, s, k in drill.secret_env],
                timeout=120,
            ),
            120,
        ),
    )
    if mark.exit_code != 0:
        return outcome("failed", f"writing the marker failed: {mark.reason} {mark.output[-300:]}")
    say(f"restore drill {component.name}: running its backup Job")
    ok, detail = _run_job(
        access, _job_from(cronjob, plan, f"{backup_name(component.name)}-drill-{run_id}"[:52])
    )
    if not ok:
        return outcome("failed", detail)
    say(f"restore drill {component.name}: restoring into a scratch instance")
    restore = runner.run_pod(
        access,
        watch,
        PodRun(
            probe.pod(
                plan,
                name=f"verify-drill-restore-{component.name}-{run_id}"[:63],
                namespace=component.namespace,
                identity=PROBE_COMPONENT,
                script=drill.restore,
                env=env,
                secret_env=[],
                timeout=JOB_TIMEOUT,
                image=component.images[drill.image],
                run_as=drill.run_as,
                writable=drill.writable,
                claims=((backup_name(component.name), "/backup"),),
                memory_mi=drill.memory_mi,
            ),
            JOB_TIMEOUT,
        ),
    )
    tail = " | ".join(line for line in restore.output.strip().splitlines()[-3:] if line.strip())
    if restore.exit_code != 0:
        return outcome("failed", f"restore failed: {restore.reason} {tail}".strip())
    return outcome("passed", tail or "marker found in the restored copy")


def run(compiled: Compiled, *, layer: str | None, say: Callable[[str], None]) -> list[Outcome]:
    """Drill every drillable component (of one layer) and record the result (the last drill's
    record is what `citykit compliance` reads)."""
    plan = compiled.plan
    access = cluster_access(plan, start=False, progress=say)
    runs = where_pods_run(access, plan.slug)
    real_nodes = runner.real_nodes(access)
    run_id = time.strftime("%H%M%S", time.gmtime())
    outcomes: list[Outcome] = []
    try:
        with runner.PodWatch(access, plan.slug) as watch:
            for component in drillable(plan):
                if layer is not None and component.layer.key != layer:
                    continue
                cronjob = _live_cronjob(access, component)
                reason = _skip_reason(plan, cronjob, runs, real_nodes)
                if reason is not None:
                    status, _, detail = reason.partition(": ")
                    outcomes.append(
                        Outcome(
                            component.name,
                            component.layer.key,
                            CHECK,
                            "failed" if status == "failed" else "skipped",
                            reason if status != "failed" else detail,
                            0.0,
                            "drill",
                        )
                    )
                    continue
                outcomes.append(drill_component(compiled, access, component, run_id, watch, say))
    finally:
        runner.sweep(access, plan.slug, wait=True)
    _record(plan, outcomes)
    return outcomes


def _record(plan: Plan, outcomes: list[Outcome]) -> None:
    path = record_path(plan)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "city": plan.slug,
        "environment": plan.environment.name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "results": [
            {"component": o.component, "status": o.status, "detail": o.detail} for o in outcomes
        ],
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    temporary.replace(path)
