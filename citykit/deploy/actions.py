"""What `citykit up / preview / destroy / refresh / drift / outputs` do, on top of the driver.

Each action returns plain data (for `--output json`) and raises a CitykitError with the failing
resource, the reason and the command to re-run when the engine fails."""

from __future__ import annotations

import json
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from rich.console import Console

from citykit.compiler import Compiled
from citykit.deploy import checkpoints, dataloss, freshness
from citykit.deploy.engine import PARALLEL, Deployment
from citykit.deploy.progress import Tracker
from citykit.errors import CitykitError, InputError, OperationFailed

Say = Callable[[str], None]


class Interrupted(CitykitError):
    """Ctrl-C stopped an engine operation; the engine cancelled it cleanly (exit 130)."""

    exit_code = 130


class DataLost(CitykitError):
    """The cluster lost a stateful component's volumes where data is protected: `up` would
    recreate them empty (exit 2: the user decides)."""

    exit_code = 2


class DriftFound(CitykitError):
    """`citykit drift` found live objects that differ from the deployment (exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Invocation:
    """How the user called citykit, for 're-run' hints."""

    profile: str
    env: str

    def command(self, verb: str, *extra: str) -> str:
        args = ["citykit", verb, "-p", self.profile, "-e", self.env, *extra]
        return " ".join(shlex.quote(a) for a in args)


def _engine_error(
    error: Exception, tracker: Tracker | None, rerun: str, backend_url: str = ""
) -> CitykitError:
    from pulumi import automation as auto

    if "incorrect passphrase" in str(error):
        return _wrong_passphrase()
    full = checkpoints.full_backend_error(str(getattr(error, "stderr", "") or error), backend_url)
    if full is not None:
        where = backend_url.removeprefix("file://")
        return OperationFailed(full, hint=f"free space (df -h {where}), then re-run: {rerun}")
    if isinstance(error, auto.ConcurrentUpdateError):
        return InputError(
            "another citykit/pulumi operation is running on this stack right now",
            hint="wait for it to finish; if its process was killed, run the command again — "
            "citykit clears a lock whose process is gone",
        )
    if tracker is not None and tracker.failures:
        first = tracker.failures[0]
        where = (
            f"{first['component']}: {first['resource']}"
            if first["component"]
            else first["resource"]
        )
        details = "\n".join(f"  {f['resource']}: {f['message']}" for f in tracker.failures[:5])
        return OperationFailed(f"failed at {where}\n{details}", hint=f"fix it and re-run: {rerun}")
    text = str(getattr(error, "stderr", "") or error).strip().splitlines()
    return OperationFailed(
        "the Pulumi engine failed:\n" + "\n".join(text[-15:]), hint=f"re-run: {rerun}"
    )


def _wrong_passphrase() -> InputError:
    """The secrets passphrase does not open the stack: say where it came from. The engine
    stops at the first secret it cannot decrypt, before it writes anything."""
    from citykit.deploy.engine import PASSPHRASE_VARIABLES, passphrase_source

    source = passphrase_source()
    origin = f"the key file {source}" if not isinstance(source, str) else f"${source}"
    return InputError(
        f"the passphrase from {origin} does not decrypt this stack's secrets (its generated "
        "credentials); nothing was changed",
        hint="use the passphrase the stack was created with: set it in "
        f"{' or '.join(PASSPHRASE_VARIABLES)}, or unset them to use citykit's key file",
    )


def _console(json_output: bool) -> Console:
    # With --output json, stdout carries only the JSON document; progress goes to stderr.
    return Console(stderr=True) if json_output else Console()


def _tracker(compiled: Compiled, json_output: bool, verb: str) -> Tracker:
    console = _console(json_output)
    return Tracker(
        compiled, console, live_display=console.is_terminal and not json_output, verb=verb
    )


def _counts(summary: Any) -> dict[str, int]:
    changes = getattr(summary, "resource_changes", None) or {}
    return {str(k): int(v) for k, v in changes.items()}


def _running(pid: int) -> bool:
    """True while `pid` runs; a killed engine whose parent died too stays a zombie until
    reaped, which must count as gone."""
    from pathlib import Path

    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def clear_stale_lock(deployment: Deployment, say: Say) -> None:
    """A `file://` backend keeps a lock file per running update; a killed citykit leaves one
    behind. Remove locks whose process is gone on this machine, so a re-run converges."""
    import socket
    from pathlib import Path

    url = deployment.backend_url()
    if not url.startswith("file://"):
        return
    root = Path(url.removeprefix("file://")) / ".pulumi" / "locks"
    if not root.is_dir():
        return
    for lock in root.rglob("*.json"):
        if deployment.name not in str(lock.parent):
            continue
        try:
            data = json.loads(lock.read_text())
        except (OSError, ValueError):
            continue
        pid, host = int(data.get("pid", 0)), data.get("hostname", "")
        if host != socket.gethostname() or pid <= 0:
            continue
        if _running(pid):
            continue  # a real concurrent update
        say(f"removing the lock of a killed run (pid {pid})")
        lock.unlink(missing_ok=True)


def _pending_operations(deployment: Deployment) -> list[Any]:
    """The state's pending operations, from a file backend's checkpoint directly where it can
    be read; other backends are asked through the engine."""
    latest = freshness.checkpoint(deployment.backend_url(), deployment.name)
    if latest is not None:
        return list(latest.get("pending_operations") or [])
    return list((deployment.stack.export_stack().deployment or {}).get("pending_operations") or [])


def recover_interrupted(deployment: Deployment, say: Say) -> None:
    """An interrupted run leaves pending operations in the state: resources that may or may not
    exist. Refreshing with clear_pending_creates reconciles them with the cluster first, so the
    re-run converges instead of tripping over half-created objects."""
    pending = _pending_operations(deployment)
    if pending:
        say(f"the last run was interrupted ({len(pending)} pending operations); refreshing first")
        deployment.stack.refresh(
            clear_pending_creates=True,
            color="never",
            on_output=lambda _: None,
            suppress_progress=True,
        )


@contextmanager
def _cancellable(say: Say) -> Iterator[list[bool]]:
    """Ctrl-C during an engine operation. The terminal signals the whole process group, so the
    engine gets it too and cancels: it starts nothing new, lets the operations in flight end,
    writes the state and releases the stack's lock. Exiting under it (Python's default) would
    leave the engine running without its program, and a re-run meeting its lock. So the first
    Ctrl-C only marks the run interrupted and citykit waits for the engine; a second one stops at
    once (the next run clears the lock and recovers the pending operations)."""
    interrupted: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield interrupted  # signal handlers belong to the main thread
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: object) -> None:
        if interrupted:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        interrupted.append(True)
        say(
            "interrupted: the engine is finishing the operations in flight, then stops "
            "(Ctrl-C again to stop at once)"
        )

    signal.signal(signal.SIGINT, handler)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted(verb: str, rerun: str) -> Interrupted:
    return Interrupted(
        f"`citykit {verb}` was interrupted: the engine cancelled the operation after the steps "
        "in flight, saved the state and released the stack's lock",
        hint=f"run it again to finish: {rerun}",
    )


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
) -> dict[str, Any]:
    deployment = Deployment(compiled)
    stack = deployment.open(start_cluster=True, progress=say)
    clear_stale_lock(deployment, say)
    checkpoints.check_space(deployment.backend_url(), deployment.name)
    check_data(deployment, how, accept_data_loss, say)
    tracker = _tracker(compiled, json_output, "deploying")
    rerun = how.command("up", "--yes")
    with _cancellable(say) as interrupted:
        try:
            result = _up(deployment, stack, tracker, interrupted, say)
        except Exception as error:  # the Automation API raises CommandError subclasses
            if interrupted:
                raise _interrupted("up", rerun) from None
            raise _engine_error(error, tracker, rerun, deployment.backend_url()) from None
    if interrupted:
        raise _interrupted("up", rerun)
    return {
        "stack": deployment.name,
        "result": result.summary.result,
        "resources": dict(tracker.resource_changes),
        **tracker.summary(),
        "outputs": _plain_outputs(deployment),
    }


def _up(
    deployment: Deployment, stack: Any, tracker: Tracker, interrupted: list[bool], say: Say
) -> Any:
    """The engine's part of `up`: recover an interrupted run, read what changed, update. Nothing
    new is started once Ctrl-C was pressed."""
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
) -> dict[str, Any]:
    deployment = Deployment(compiled)
    stack = deployment.open(start_cluster=False, progress=say)
    clear_stale_lock(deployment, say)
    tracker = _tracker(compiled, json_output, "previewing")
    tracker.live_display, tracker.quiet = False, True
    try:
        deployment.ensure_generated_secrets()
        result = stack.preview(
            parallel=PARALLEL,
            on_event=tracker.on_event,
            color="never",
            refresh=refresh,
            on_output=lambda _: None,
            suppress_progress=True,
        )
    except Exception as error:
        raise _engine_error(error, tracker, how.command("preview")) from None
    counts = {str(k): int(v) for k, v in result.change_summary.items()}
    changed = {k: v for k, v in counts.items() if k not in ("same",) and v}
    return {
        "stack": deployment.name,
        "changes": tracker.changes,
        "counts": counts,
        "changed": bool(changed),
        "warnings": tracker.warnings(),
    }


def refresh(compiled: Compiled, how: Invocation, *, json_output: bool, say: Say) -> dict[str, Any]:
    deployment = Deployment(compiled)
    stack = deployment.open(start_cluster=False, progress=say)
    clear_stale_lock(deployment, say)
    checkpoints.check_space(deployment.backend_url(), deployment.name)
    tracker = _tracker(compiled, json_output, "refreshing")
    tracker.live_display, tracker.quiet = False, True
    try:
        result = stack.refresh(
            parallel=PARALLEL,
            on_event=tracker.on_event,
            color="never",
            on_output=lambda _: None,
            clear_pending_creates=True,
            suppress_progress=True,
        )
    except Exception as error:
        rerun = how.command("refresh", "--yes")
        raise _engine_error(error, tracker, rerun, deployment.backend_url()) from None
    return {
        "stack": deployment.name,
        "resources": _counts(result.summary),
        "changes": tracker.changes,
    }


def drift(compiled: Compiled, how: Invocation, *, json_output: bool, say: Say) -> dict[str, Any]:
    """Live cluster vs. what the profile asks for: a refreshing preview, nothing written."""
    found = preview(compiled, how, json_output=json_output, say=say, refresh=True)
    found["drift"] = found.pop("changed")
    return found


def destroy(
    compiled: Compiled, how: Invocation, *, json_output: bool, say: Say, delete_data: bool
) -> dict[str, Any]:
    deployment = Deployment(compiled)
    stack = deployment.open(start_cluster=False, progress=say)
    clear_stale_lock(deployment, say)
    checkpoints.check_space(deployment.backend_url(), deployment.name)
    protect = compiled.plan.environment.protect_data
    if protect and delete_data:
        say("--delete-data: unprotecting the stateful resources before destroying them")
        state = stack.export_stack()
        for resource in (state.deployment or {}).get("resources", []) or []:
            resource["protect"] = False
            # Retained namespaces go too: deleting them removes the claims the StatefulSets
            # kept (their retention policy was Retain while the data was protected).
            resource["retainOnDelete"] = False
        stack.import_stack(state)
    tracker = _tracker(compiled, json_output, "destroying")
    tracker.live_display = False
    try:
        result = stack.destroy(
            parallel=PARALLEL,
            on_event=tracker.on_event,
            color="never",
            on_output=lambda _: None,
            suppress_progress=True,
            exclude_protected=protect and not delete_data,
        )
    except Exception as error:
        rerun = how.command("destroy", "--yes")
        raise _engine_error(error, tracker, rerun, deployment.backend_url()) from None
    kept: list[str] = []
    kept_dependencies: list[str] = []
    if protect and not delete_data:
        kept = [u.component.name for u in compiled.units if u.component.cls.stateful]
        kept_dependencies = sorted(required_by(compiled, kept) - set(kept))
    return {
        "stack": deployment.name,
        "resources": _counts(result.summary),
        "kept_protected": kept,
        "kept_dependencies": kept_dependencies,
        **tracker.summary(),
    }


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


def outputs(compiled: Compiled, how: Invocation, *, say: Say) -> dict[str, Any]:
    deployment = Deployment(compiled)
    # The outputs are in the state: listing them needs no cluster.
    stack = deployment.open(start_cluster=False, progress=say, reach_cluster=False)
    try:
        values = stack.outputs()
    except Exception as error:
        raise _engine_error(error, None, how.command("outputs")) from None
    return {k: ("[secret]" if v.secret else v.value) for k, v in sorted(values.items())}


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
