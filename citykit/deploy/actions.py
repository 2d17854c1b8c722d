"""What `citykit up / preview / destroy / refresh / drift / outputs` do, on top of the driver.

Each action returns a typed result (results.py; `to_json()` for `--output json`) and raises a
CitykitError with the failing resource, the reason and the command to re-run when the engine
fails (operation.py, the skeleton they share)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from citykit.compiler import Compiled
from citykit.deploy import dataloss
from citykit.deploy import freshness
from citykit.deploy.engine import PARALLEL
from citykit.deploy.engine import Deployment
from citykit.deploy.operation import Invocation
from citykit.deploy.operation import Operation
from citykit.deploy.operation import operation
from citykit.deploy.progress import Tracker
from citykit.deploy.recovery import recover_interrupted
from citykit.deploy.results import DestroyResult
from citykit.deploy.results import DriftResult
from citykit.deploy.results import OutputsResult
from citykit.deploy.results import PreviewResult
from citykit.deploy.results import RefreshResult
from citykit.deploy.results import UpResult
from citykit.errors import CitykitError
from citykit.errors import InputError

Say = Callable[[str], None]


class DataLost(CitykitError):
    """The cluster lost a stateful component's volumes where data is protected: `up` would
    recreate them empty (exit 2: the user decides)."""

    exit_code = 2


class DriftFound(CitykitError):
    """`citykit drift` found live objects that differ from the deployment (exit 2)."""

    exit_code = 2


def _counts(summary: Any) -> dict[str, int]:
    changes = getattr(summary, "resource_changes", None) or {}
    return {str(k): int(v) for k, v in changes.items()}


@contextmanager
def _no_read_back(stack: Any, tracker: Tracker) -> Iterator[None]:
    """The SDK's `Stack.up` runs `pulumi stack output` and `pulumi stack history` after the
    update, about a second of a ten-second no-op `up`. The same facts are already at hand: the
    counts from the engine's summary event, the outputs in the checkpoint (`_plain_outputs`)."""
    stack.outputs = lambda: {}
    stack.info = lambda *args, **kwargs: SimpleNamespace(
        result="succeeded", resource_changes=tracker.resource_changes
    )
    try:
        yield
    finally:
        del stack.outputs, stack.info


def _plain_outputs(deployment: Deployment) -> dict[str, Any]:
    """The stack's outputs that are not secrets; from a file backend's checkpoint directly,
    otherwise through the engine."""
    latest = freshness.checkpoint(deployment.backend_url(), deployment.name)
    if latest is None:
        return {k: v.value for k, v in deployment.stack.outputs().items() if not v.secret}
    for resource in latest.get("resources") or []:
        if resource.get("type") == "pulumi:pulumi:Stack":
            return {
                k: v
                for k, v in (resource.get("outputs") or {}).items()
                if not (isinstance(v, dict) and freshness.SECRET_SIGNATURE in v)
            }
    return {}


def check_data(deployment: Deployment, how: Invocation, accept_loss: bool, say: Say) -> None:
    """Before `up` changes anything: the stateful components' volumes that the state recorded
    must still be in the cluster where the environment protects data (dataloss.py)."""
    latest = freshness.checkpoint(deployment.backend_url(), deployment.name)
    if not latest or deployment.access is None:
        return
    live = freshness.live_objects(deployment.access, {dataloss.CLAIM})
    if live is None:
        say("warning: could not list the cluster's PersistentVolumeClaims to check for lost data")
        return
    lost = dataloss.find(deployment.compiled, latest, {(k[2], k[3]) for k in live})
    if not lost:
        return
    gone = [item for item in lost if item.all_gone]
    if not deployment.compiled.plan.environment.protect_data or accept_loss or not gone:
        say("warning: volumes the last deployment had are gone and will be recreated empty:")
        say(dataloss.describe(lost))
        return
    raise DataLost(
        "the cluster no longer has the data of "
        + ", ".join(item.component for item in gone)
        + " (deleted by hand, or with its namespace):\n"
        + dataloss.describe(lost)
        + "\n`up` would recreate these volumes empty, so it stopped before changing anything",
        hint="restore the claims (or the namespace) from your backups and re-run; to start with "
        f"empty volumes instead: {how.command('up', '--yes', '--accept-data-loss')}",
    )


def up(
    compiled: Compiled,
    how: Invocation,
    *,
    json_output: bool,
    say: Say,
    accept_data_loss: bool = False,
) -> UpResult:
    with operation(
        compiled,
        how,
        "up",
        json_output=json_output,
        say=say,
        rerun=("--yes",),
        start_cluster=True,
        writes_state=True,
    ) as op:
        check_data(op.deployment, how, accept_data_loss, say)
        tracker = op.track("deploying", cancellable=True)
        result = _up(op, tracker, say)
    return UpResult(
        stack=op.deployment.name,
        result=result.summary.result,
        resources=dict(tracker.resource_changes),
        **tracker.summary(),
        outputs=_plain_outputs(op.deployment),
    )


def _up(op: Operation, tracker: Tracker, say: Say) -> Any:
    """The engine's part of `up`: recover an interrupted run, read what changed, update. Nothing
    new is started once Ctrl-C was pressed."""
    deployment, stack, interrupted = op.deployment, op.stack, op.interrupted
    recover_interrupted(deployment, say)
    deployment.ensure_generated_secrets()
    target = deployment.access.description if deployment.access else "cluster"
    say(f"deploying {deployment.name} to the {target}")
    # `up` repairs drift (hand edits, deleted objects) instead of comparing with the last
    # recorded state only, so what changed in the cluster is read first: only the objects whose
    # content moved (citykit/deploy/freshness.py); when that cannot be told, the engine
    # refreshes everything in the same run.
    stale = freshness.stale_urns(deployment.backend_url(), deployment.name, deployment.access)
    with tracker:
        if stale and not interrupted:
            say(f"reading {len(stale)} objects that changed in the cluster")
            stack.refresh(
                target=stale,
                parallel=PARALLEL,
                color="never",
                on_output=lambda _: None,
                suppress_progress=True,
            )
        if interrupted:
            return None
        with _no_read_back(stack, tracker):
            return stack.up(
                refresh=stale is None,
                parallel=PARALLEL,
                on_event=tracker.on_event,
                color="never",
                suppress_outputs=True,
                suppress_progress=True,
                on_output=lambda _: None,
            )


def preview(
    compiled: Compiled, how: Invocation, *, json_output: bool, say: Say, refresh: bool = False
) -> PreviewResult:
    with operation(compiled, how, "preview", json_output=json_output, say=say) as op:
        tracker = op.track("previewing", live=False, quiet=True)
        op.deployment.ensure_generated_secrets()
        result = op.stack.preview(
            parallel=PARALLEL,
            on_event=tracker.on_event,
            color="never",
            refresh=refresh,
            on_output=lambda _: None,
            suppress_progress=True,
        )
    counts = {str(k): int(v) for k, v in result.change_summary.items()}
    changed = {k: v for k, v in counts.items() if k not in ("same",) and v}
    return PreviewResult(
        stack=op.deployment.name,
        changes=tracker.changes,
        counts=counts,
        changed=bool(changed),
        warnings=tracker.warnings(),
    )


def refresh(compiled: Compiled, how: Invocation, *, json_output: bool, say: Say) -> RefreshResult:
    with operation(
        compiled,
        how,
        "refresh",
        json_output=json_output,
        say=say,
        rerun=("--yes",),
        writes_state=True,
    ) as op:
        tracker = op.track("refreshing", live=False, quiet=True)
        result = op.stack.refresh(
            parallel=PARALLEL,
            on_event=tracker.on_event,
            color="never",
            on_output=lambda _: None,
            clear_pending_creates=True,
            suppress_progress=True,
        )
    return RefreshResult(
        stack=op.deployment.name, resources=_counts(result.summary), changes=tracker.changes
    )


def drift(compiled: Compiled, how: Invocation, *, json_output: bool, say: Say) -> DriftResult:
    """Live cluster vs. what the profile asks for: a refreshing preview, nothing written."""
    found = preview(compiled, how, json_output=json_output, say=say, refresh=True)
    return DriftResult(
        stack=found.stack,
        changes=found.changes,
        counts=found.counts,
        warnings=found.warnings,
        drift=found.changed,
    )


def destroy(
    compiled: Compiled, how: Invocation, *, json_output: bool, say: Say, delete_data: bool
) -> DestroyResult:
    protect = compiled.plan.environment.protect_data
    with operation(
        compiled,
        how,
        "destroy",
        json_output=json_output,
        say=say,
        rerun=("--yes",),
        writes_state=True,
    ) as op:
        if protect and delete_data:
            say("--delete-data: unprotecting the stateful resources before destroying them")
            state = op.stack.export_stack()
            for resource in (state.deployment or {}).get("resources", []) or []:
                resource["protect"] = False
                # Retained namespaces go too: deleting them removes the claims the StatefulSets
                # kept (their retention policy was Retain while the data was protected).
                resource["retainOnDelete"] = False
            op.stack.import_stack(state)
        tracker = op.track("destroying", live=False)
        result = op.stack.destroy(
            parallel=PARALLEL,
            on_event=tracker.on_event,
            color="never",
            on_output=lambda _: None,
            suppress_progress=True,
            exclude_protected=protect and not delete_data,
        )
    kept: list[str] = []
    kept_dependencies: list[str] = []
    if protect and not delete_data:
        kept = [u.component.name for u in compiled.units if u.component.cls.stateful]
        kept_dependencies = sorted(required_by(compiled, kept) - set(kept))
    return DestroyResult(
        stack=op.deployment.name,
        resources=_counts(result.summary),
        kept_protected=kept,
        kept_dependencies=kept_dependencies,
        **tracker.summary(),
    )


def required_by(compiled: Compiled, names: list[str]) -> set[str]:
    """`names` and everything they require, transitively: what a destroy that keeps `names`
    must keep too (the engine never deletes a dependency of a resource it keeps)."""
    plan = compiled.plan
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(plan.by_name(name).requires)
    return seen


def outputs(compiled: Compiled, how: Invocation, *, say: Say) -> OutputsResult:
    # The outputs are in the state: listing them needs no cluster, and takes no lock.
    with operation(compiled, how, "outputs", say=say, reach_cluster=False, locking=False) as op:
        op.engine_runs()
        values = op.stack.outputs()
    return OutputsResult(
        {k: ("[secret]" if v.secret else v.value) for k, v in sorted(values.items())}
    )


def confirm(question: str, assume_yes: bool) -> None:
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise InputError(
            "refusing to change the cluster without confirmation",
            hint="pass --yes when running without a terminal",
        )
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise InputError("cancelled")
