"""`citykit images`: build the components' images from packages on this machine (no registry)
and load them into a node's containerd."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated
from typing import Any

import typer
from citykit.cli import output
from citykit.cli.options import EnvOption
from citykit.cli.options import Format
from citykit.cli.options import OptionalProfileOption
from citykit.cli.options import OutputOption
from rich.table import Table

from citykit import compiler
from citykit.catalog import load_catalog
from citykit.contract.component import Component
from citykit.errors import InputError
from citykit.errors import ToolMissing
from citykit.images import build
from citykit.images import containerd
from citykit.images import inventory
from citykit.images import node
from citykit.images import node_image as node_image_build
from citykit.input import environment as environments
from citykit.verify.probe import PROBE_TARGET

app = typer.Typer(
    help="Build component images from Debian and npm packages (cached under "
    "~/.cache/citykit/images) and load them into a node's containerd.",
    no_args_is_help=True,
)

AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        envvar=containerd.ADDRESS_ENV,
        help="containerd socket of the node to load into (default: the environment's real "
        "node, when its local cluster is running).",
        show_default=False,
    ),
]
ComponentOption = Annotated[
    list[str] | None,
    typer.Option(
        "--component", "-c", help="Only this component's images (repeatable).", show_default=False
    ),
]


def _select(
    profile: Path | None, env: str, only: list[str] | None
) -> tuple[list[type[Component]], dict[str, Mapping[str, str]] | None]:
    """The components to work on (the plan's, or the catalog's) and the plan's upstream refs."""
    catalog = load_catalog()
    upstream: dict[str, Mapping[str, str]] | None = None
    if profile is not None:
        the_plan = compiler.plan(profile, env, catalog)
        classes = [planned.cls for planned in the_plan.components]
        # Upstream's references through the environment's mirror (the plan's own may be the
        # local ones, when the environment uses local images).
        mirror = the_plan.environment.registry_mirror
        upstream = {
            planned.name: {key: image.ref(mirror) for key, image in planned.cls.images.items()}
            for planned in the_plan.components
        }
    else:
        classes = catalog.components()
    if only:
        known = {cls.name for cls in classes}
        unknown = sorted(set(only) - known)
        if unknown:
            where = f"the plan of {profile}" if profile is not None else "the catalog"
            raise InputError(
                f"not in {where}: {', '.join(unknown)}",
                hint="`citykit images list` shows the components and their images",
            )
        classes = [cls for cls in classes if cls.name in only]
    return classes, upstream


NodeImageOption = Annotated[
    bool,
    typer.Option(
        "--node-image",
        help="Build the kind node image instead (Debian, containerd, kubelet, kubeadm and the "
        "cluster's own images, all from packages and Go modules): what `citykit cluster up` "
        "with the kind provider starts its nodes from.",
    ),
]


@app.command("build")
def build_images(
    profile: OptionalProfileOption = None,
    env: EnvOption = "dev",
    component: ComponentOption = None,
    address: AddressOption = None,
    node_image: NodeImageOption = False,
    output_format: OutputOption = Format.table,
) -> None:
    """Build the local images of the planned components (without a profile: every recipe),
    and the probe image of `citykit verify`; with --node-image, the kind node image.

    Then load them into the node's containerd when its socket is there. Cached archives make
    this a no-op; a cold image takes seconds to a few minutes, and building needs root."""
    if node_image:
        _build_node_image(output_format)
        return
    classes, _ = _select(profile, env, component)
    # The verify probe goes with every full build: `citykit verify` runs it on the node.
    chosen = build.targets(classes) + ([] if component else [PROBE_TARGET])
    say = output.say_err if output_format is Format.json else output.say
    started = time.monotonic()

    def progress(target: build.Target, state: str) -> None:
        say(f"[{time.monotonic() - started:6.1f}s] {target.ref}: {state}")

    results = build.build_all(chosen, progress)
    address = address or node.node_address(env)
    for result in results:
        if result.state == "built":
            say(f"  {result.target.ref}: {result.seconds:.1f}s, {result.size / 2**20:.0f} MiB")
    loaded = _load(results, address, env, say)
    if output_format is Format.json:
        output.print_json(
            {
                "images": [
                    {
                        "component": r.target.component,
                        "image": r.target.key,
                        "ref": r.target.ref,
                        "version": r.target.recipe.version,
                        "state": r.state,
                        "seconds": round(r.seconds, 1),
                        "size": r.size,
                        "archive": str(r.archive),
                        "loaded": loaded,
                    }
                    for r in results
                ],
                "address": address,
                "loaded": loaded,
            }
        )
        return
    built = sum(1 for r in results if r.state == "built")
    say(
        f"{built} built, {len(results) - built} cached, {time.monotonic() - started:.1f}s; "
        f"archives in {build.images_dir()}"
    )


def _build_node_image(output_format: Format) -> None:
    say = output.say_err if output_format is Format.json else output.say
    started = time.monotonic()
    built = node_image_build.build_node_image(say)
    seconds = time.monotonic() - started
    if output_format is Format.json:
        output.print_json(
            {
                "ref": built.ref,
                "archive": str(built.archive),
                "state": built.state,
                "seconds": round(seconds, 1),
                "size": built.archive.stat().st_size,
                "labels": built.labels,
            }
        )
        return
    say(
        f"{built.ref}: {built.state} in {seconds:.1f}s, "
        f"{built.archive.stat().st_size / 2**20:.0f} MiB ({built.archive})"
    )


def _load(results: list[build.Built], address: str | None, env: str, say: Any) -> bool:
    if not results:
        say("no local image recipe among these components")
        return False
    if not address and environments.load(env)[0].cluster.provider == "kind":
        say(
            f"not loading: `citykit up -e {env}` imports into the kind cluster's nodes the images "
            "their pods use"
        )
        return False
    if not address:
        say(
            "not loading: no node runtime is running for this environment (`citykit up` loads "
            f"the images when it starts the real node; --address or ${containerd.ADDRESS_ENV} "
            "names another containerd socket)"
        )
        return False
    if not containerd.reachable(address):
        say(f"not loading: no containerd socket at {address}")
        return False
    for result in results:
        containerd.load(result.archive, address)
        say(f"loaded {result.target.ref} into {address}")
    return True


@app.command("list")
def list_images(
    profile: OptionalProfileOption = None,
    env: EnvOption = "dev",
    component: ComponentOption = None,
    output_format: OutputOption = Format.table,
    address: AddressOption = None,
) -> None:
    """List the components' images, upstream and local, and what is built and loaded.

    Per image: the upstream reference, whether a local recipe exists, the local reference and
    version, whether that version differs from upstream's tag, and not built / built / loaded."""
    classes, upstream = _select(profile, env, component)
    address = address or node.node_address(env)
    loaded: set[str] | None = None
    if address and containerd.reachable(address):
        try:
            loaded = containerd.loaded(address)
        except ToolMissing as error:
            output.say_err(f"note: {error.message}; states do not say what is loaded")
    rows = inventory.rows(classes, upstream, loaded)
    if output_format is Format.json:
        output.print_json(rows)
        return
    table = Table(title="citykit images")
    columns = ("component", "layer", "upstream image", "recipe", "local ref", "version", "differs")
    for column in (*columns, "state"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["component"] + ("" if row["image"] == "main" else f" ({row['image']})"),
            row["layer"],
            row["upstream"] or "-",
            "yes" if row["recipe"] else "no",
            row["localRef"] or "-",
            row["localVersion"] or "-",
            {True: "yes", False: "no", None: "-"}[row["differsFromUpstream"]],
            row["state"] or "-",
        )
    output.console.print(table)
