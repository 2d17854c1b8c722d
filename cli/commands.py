"""The explicit list of subcommands. Adding a command means one module and one line here.
Each module defines `register(app)`; `tools`, `images` and `cluster` are command
groups (`app`)."""

from __future__ import annotations

import importlib

import typer

# In the order `citykit --help` lists them: the compile pipeline, deployment, then machinery.
COMMANDS = (
    "init",
    "validate",
    "plan",
    "render",
    "catalog",
    "schema",
    "compliance",
    "graph",
    "diff",
    "simulate",
    "up",
    "preview",
    "destroy",
    "refresh",
    "drift",
    "status",
    "verify",
    "outputs",
    "doctor",
)
GROUPS = ("cluster", "images", "tools")


def register(app: typer.Typer) -> None:
    for name in COMMANDS:
        module = importlib.import_module(f"citykit.cli.{name}")
        module.register(app)
    for name in GROUPS:
        module = importlib.import_module(f"citykit.cli.{name}")
        app.add_typer(module.app, name=name)
