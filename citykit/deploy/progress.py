"""Live progress of an engine run, per reference-model layer and component, from the Automation
API's event stream; and what the run changed or failed on, for the summary and `--output json`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from citykit.compiler import Compiled

if TYPE_CHECKING:
    from pulumi.automation import DiagnosticEvent
    from pulumi.automation import EngineEvent

QUIET_OPS = {"same", "read", "refresh", "discard"}


def component_token(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def parse_urn(urn: str) -> tuple[list[str], str]:
    """urn:pulumi:stack::project::parent$type::name -> (type chain, name)."""
    parts = urn.split("::")
    return parts[2].split("$"), "::".join(parts[3:])


@dataclass
class ComponentProgress:
    name: str
    layer: str
    total: int
    done: int = 0
    changed: int = 0
    failed: bool = False
    started: float | None = None
    finished: float | None = None

    @property
    def state(self) -> str:
        if self.failed:
            return "failed"
        if self.total and self.done >= self.total:
            return "done"
        return "working" if self.started is not None else "waiting"


@dataclass
class Tracker:
    compiled: Compiled
    console: Console
    live_display: bool
    verb: str = "deploying"
    quiet: bool = False  # no per-component lines (previews: nothing happens to report)
    components: dict[str, ComponentProgress] = field(default_factory=dict)
    changes: list[dict[str, str]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    # Every warning and error the engine or the provider reported, attributed to its component
    # and resource where it has one (the engine's own have none).
    diagnostics: list[dict[str, str]] = field(default_factory=list)
    # The engine's own count of steps by operation, from its summary event at the end.
    resource_changes: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    _live: Live | None = None
    _by_token: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for unit in self.compiled.units:
            name = unit.component.name
            self.components[name] = ComponentProgress(
                name, unit.component.layer.key, len(unit.objects)
            )
            self._by_token[f"citykit:component:{component_token(name)}"] = name

    # -- display -------------------------------------------------------------------------------
    def __enter__(self) -> Tracker:
        if self.live_display:
            self._live = Live(
                self._table(), console=self.console, refresh_per_second=4, transient=False
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(None, None, None)

    def _table(self) -> Table:
        elapsed = time.monotonic() - self.started
        table = Table(title=f"{self.verb} — {elapsed:.0f}s", title_justify="left")
        for column in ("layer", "component", "objects", "changed", "state", "time"):
            table.add_column(column)
        for item in self.components.values():
            took = ""
            if item.started is not None:
                end = item.finished or time.monotonic()
                took = f"{end - item.started:.0f}s"
            style = {"failed": "red", "done": "green", "working": "yellow"}.get(item.state, "")
            table.add_row(
                item.layer,
                item.name,
                f"{item.done}/{item.total}",
                str(item.changed),
                f"[{style}]{item.state}[/]" if style else item.state,
                took,
            )
        return table

    def _line(self, text: str) -> None:
        if self._live is None and not self.quiet:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    # -- events --------------------------------------------------------------------------------
    def component_of(self, urn: str) -> str | None:
        types, _ = parse_urn(urn)
        for token in types:
            if token in self._by_token:
                return self._by_token[token]
        return None

    def on_event(self, event: EngineEvent) -> None:
        now = time.monotonic()
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            name = self.component_of(meta.urn)
            op = str(getattr(meta.op, "value", meta.op))
            if op == "refresh":
                return  # the refresh that `up` runs first reads the cluster; it deploys nothing
            kubernetes = meta.type.startswith("kubernetes:") and meta.type != (
                "pulumi:providers:kubernetes"
            )
            if name and kubernetes:
                item = self.components[name]
                if item.started is None:
                    item.started = now
                    self._line(f"  {item.layer}/{name}: {self.verb}")
                if op not in QUIET_OPS:
                    item.changed += 1
            if kubernetes and op not in QUIET_OPS:
                self.changes.append(
                    {
                        "op": op,
                        "type": meta.type,
                        "name": parse_urn(meta.urn)[1],
                        "component": name or "",
                    }
                )
        elif event.res_outputs_event is not None:
            meta = event.res_outputs_event.metadata
            if str(getattr(meta.op, "value", meta.op)) == "refresh":
                return
            name = self.component_of(meta.urn)
            if name and meta.type.startswith("kubernetes:"):
                item = self.components[name]
                item.done += 1
                if item.done >= item.total and item.finished is None:
                    item.finished = now
                    self._line(
                        f"  {item.layer}/{name}: done ({item.total} objects, "
                        f"{now - (item.started or now):.1f}s)"
                    )
        elif event.summary_event is not None:
            self.resource_changes = {
                str(op): int(count)
                for op, count in (event.summary_event.resource_changes or {}).items()
            }
        elif event.diagnostic_event is not None:
            self._diagnostic(event.diagnostic_event)
        if self._live is not None:
            self._live.update(self._table())

    def _diagnostic(self, diagnostic: DiagnosticEvent) -> None:
        severity = str(diagnostic.severity)
        if severity not in ("warning", "error"):
            return  # debug and info: the engine's own chatter
        message = diagnostic.message.strip()
        urn = diagnostic.urn or ""
        name = self.component_of(urn) if urn else None
        resource = parse_urn(urn)[1] if urn else ""
        entry = {
            "severity": severity,
            "component": name or "",
            "resource": resource,
            "message": message,
        }
        if entry in self.diagnostics:
            return  # said once per resource, however often it is repeated
        self.diagnostics.append(entry)
        if severity == "error" and urn:
            if name:
                self.components[name].failed = True
            self.failures.append(
                {"resource": resource, "component": name or "", "message": message}
            )
        # Shown as it arrives, even in a quiet preview: a warning is the one line that must not
        # be lost in a table of creates. Errors are the failure report's job.
        if severity == "warning":
            where = ": ".join(part for part in (name, resource) if part) or "engine"
            self.console.print(
                f"warning: {where}: {message}", markup=False, highlight=False, soft_wrap=True
            )

    def warnings(self) -> list[dict[str, str]]:
        return [d for d in self.diagnostics if d["severity"] == "warning"]

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(time.monotonic() - self.started, 1),
            "changes": self.changes,
            "failures": self.failures,
            "warnings": self.warnings(),
        }
