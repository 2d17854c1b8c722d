"""The skeleton every deployment action shares, as one context manager (after nebari's deploy,
which enters each stage's context on a `contextlib.ExitStack`):

    with operation(compiled, how, "up", json_output=..., say=say, rerun=("--yes",)) as op:
        ...  # prepare: the action's own checks; their errors are their own
        tracker = op.track("deploying", cancellable=True)
        ...  # the engine runs: its errors become a CitykitError with the re-run hint

`operation` opens the stack (starting or reaching the cluster as asked) and clears the lock a
killed run left; `track` starts the progress tracker and, for the rest of the block, translates
the engine's errors (the failed resource, a wrong passphrase, a concurrent run) and, where asked,
lets Ctrl-C wait for the engine to cancel cleanly (exit 130)."""

from __future__ import annotations

import shlex
import signal
import threading
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import ExitStack
from contextlib import contextmanager
from contextlib import nullcontext
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from rich.console import Console

from citykit.compiler import Compiled
from citykit.deploy import checkpoints
from citykit.deploy.engine import Deployment
from citykit.deploy.progress import Tracker
from citykit.deploy.recovery import clear_stale_lock
from citykit.errors import CitykitError
from citykit.errors import InputError
from citykit.errors import OperationFailed

Say = Callable[[str], None]


class Interrupted(CitykitError):
    """Ctrl-C stopped an engine operation; the engine cancelled it cleanly (exit 130)."""

    exit_code = 130


@dataclass(frozen=True)
class Invocation:
    """How the user called citykit, for 're-run' hints."""

    profile: str
    env: str

    def command(self, verb: str, *extra: str) -> str:
        args = ["citykit", verb, "-p", self.profile, "-e", self.env, *extra]
        return " ".join(shlex.quote(a) for a in args)


def engine_error(
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
    from citykit.deploy.engine import PASSPHRASE_VARIABLES
    from citykit.deploy.engine import passphrase_source

    source = passphrase_source()
    origin = f"the key file {source}" if not isinstance(source, str) else f"${source}"
    return InputError(
        f"the passphrase from {origin} does not decrypt this stack's secrets (its generated "
        "credentials); nothing was changed",
        hint="use the passphrase the stack was created with: set it in "
        f"{' or '.join(PASSPHRASE_VARIABLES)}, or unset them to use citykit's key file",
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


@dataclass
class Operation:
    """An opened stack for the length of one action (see the module's docstring)."""

    deployment: Deployment
    stack: Any  # pulumi.automation.Stack, imported lazily
    verb: str
    rerun: str  # the command that runs the action again
    json_output: bool
    say: Say
    exits: ExitStack
    tracker: Tracker | None = None
    # Set once Ctrl-C was pressed under `track(cancellable=True)`: start nothing new.
    interrupted: list[bool] = field(default_factory=list)

    def track(
        self, doing: str, *, live: bool = True, quiet: bool = False, cancellable: bool = False
    ) -> Tracker:
        """The progress tracker (a live table on a terminal when `live`; no per-component lines
        when `quiet`), from here on the engine's errors translated (`engine_runs`)."""
        # With --output json, stdout carries only the JSON document; progress goes to stderr.
        console = Console(stderr=True) if self.json_output else Console()
        self.tracker = Tracker(
            self.deployment.compiled,
            console,
            live_display=live and console.is_terminal and not self.json_output,
            verb=doing,
            quiet=quiet,
        )
        self.engine_runs(cancellable=cancellable)
        return self.tracker

    def engine_runs(self, *, cancellable: bool = False) -> None:
        """From here to the end of the `with` block the engine runs: its errors become
        CitykitErrors; with `cancellable`, the first Ctrl-C waits for it to cancel."""
        self.exits.enter_context(self._engine(cancellable))

    @contextmanager
    def _engine(self, cancellable: bool) -> Iterator[None]:
        with _cancellable(self.say) if cancellable else nullcontext(self.interrupted) as stopped:
            self.interrupted = stopped
            try:
                yield
            except Exception as error:  # the Automation API raises CommandError subclasses
                if stopped:
                    raise _interrupted(self.verb, self.rerun) from None
                backend = self.deployment.backend_url()
                raise engine_error(error, self.tracker, self.rerun, backend) from None
        if stopped:
            raise _interrupted(self.verb, self.rerun)


@contextmanager
def operation(
    compiled: Compiled,
    how: Invocation,
    verb: str,
    *,
    say: Say,
    json_output: bool = False,
    rerun: tuple[str, ...] = (),
    start_cluster: bool = False,
    reach_cluster: bool = True,
    locking: bool = True,
    writes_state: bool = False,
) -> Iterator[Operation]:
    """The stack of `compiled`, opened: the local cluster started when `start_cluster`, the
    cluster checked to answer when `reach_cluster`, and, for an action that takes the stack's
    lock (`locking`; listing outputs only reads), the lock of a killed run removed. `rerun` are
    the flags the re-run hints add to `citykit <verb>`. An action that `writes_state` is refused
    first when the backend has no room for the state (checkpoints.check_space)."""
    deployment = Deployment(compiled)
    stack = deployment.open(start_cluster=start_cluster, progress=say, reach_cluster=reach_cluster)
    if locking:
        clear_stale_lock(deployment, say)
    if writes_state:
        checkpoints.check_space(deployment.backend_url(), deployment.name)
    with ExitStack() as exits:
        yield Operation(deployment, stack, verb, how.command(verb, *rerun), json_output, say, exits)
