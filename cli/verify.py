"""`citykit verify`: run the deployed city's functional checks and flow checks from inside the
cluster, and (with --restore-drill) restore each real stateful component's backup."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from typing import Annotated

import typer
from citykit.cli import deployment
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import Format
from citykit.cli.options import OutputOption
from citykit.cli.options import ProfileOption
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from citykit.contract import layers
from citykit.errors import CitykitError
from citykit.errors import InputError

if TYPE_CHECKING:
    from citykit.verify.checks import Outcome

LayerOption = Annotated[
    str | None,
    typer.Option(
        "--layer",
        "-l",
        help=f"Only this layer's checks: {', '.join(layers.BY_KEY)}.",
        show_default=False,
    ),
]
DrillOption = Annotated[
    bool,
    typer.Option(
        "--restore-drill",
        help="Also run each real stateful component's backup now, restore it into a scratch "
        "instance and compare a marker written before (等保2.0 restore drill).",
    ),
]


class ChecksFailed(CitykitError):
    exit_code = 2


class CouldNotVerify(CitykitError):
    """The checks could not run (no cluster, no access): exit 1, so that 2 always means that a
    check ran and failed."""

    exit_code = 1


COLOURS = {"passed": "green", "failed": "red", "skipped": "yellow"}


def register(app: typer.Typer) -> None:
    @app.command()
    def verify(
        profile: ProfileOption,
        env: EnvOption = "dev",
        layer: LayerOption = None,
        restore_drill: DrillOption = False,
        output_format: OutputOption = Format.table,
    ) -> None:
        """Prove that the deployed city works: each component's functional checks (publish and
        subscribe, SQL with the generated credentials, metrics scraped, routes served...) and
        every flow of the graph (allowed ones connect, a sample of others is blocked), run as
        short-lived restricted pods. Checks of components that run on simulated nodes are
        skipped, never passed. Exit 0 when every check passes, 2 when one fails, 1 on an
        error."""
        from citykit.verify import runner

        if layer is not None and layer not in layers.BY_KEY:
            raise InputError(
                f"--layer: unknown layer {layer!r}",
                hint=f"use one of: {', '.join(layers.BY_KEY)}",
            )
        compiled, _, say = deployment.prepare(profile, env, output_format)
        started = time.monotonic()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=output.err_console,
            transient=True,
        ) as bar:
            task = bar.add_task("verify: probe pods", total=None)

            def done(finished: int, total: int) -> None:
                bar.update(task, completed=finished, total=total)

            try:
                outcomes = runner.verify(compiled, layer=layer, say=say, done=done)
                if restore_drill:
                    from citykit.verify import drill

                    bar.update(task, description="restore drill", completed=0, total=None)
                    outcomes += drill.run(compiled, layer=layer, say=say)
            except CitykitError as error:
                raise CouldNotVerify(error.message, hint=error.hint) from None
        seconds = time.monotonic() - started
        if output_format is Format.json:
            output.print_json({"checks": [o.as_json() for o in outcomes]})
        else:
            _tables(compiled.plan.slug, env, outcomes)
        counts = {s: sum(1 for o in outcomes if o.status == s) for s in COLOURS}
        say(
            f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped "
            f"in {seconds:.1f}s"
        )
        failed = sorted({o.component for o in outcomes if o.status == "failed"})
        if failed:
            raise ChecksFailed(f"checks failed in: {', '.join(failed)}")


def _tables(slug: str, env: str, outcomes: list[Outcome]) -> None:
    for layer in layers.ALL:
        rows = [o for o in outcomes if o.layer == layer.key]
        if not rows:
            continue
        table = Table(
            title=f"{slug} in {env} — {layer.clause} {layer.title} ({layer.title_zh})",
            title_justify="left",
        )
        for column in ("component", "check", "status", "time", "detail"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(
                row.component,
                row.check,
                f"[{COLOURS[row.status]}]{row.status}[/]",
                f"{row.seconds:.1f}s" if row.seconds else "",
                Text(row.detail),
            )
        output.console.print(table)
