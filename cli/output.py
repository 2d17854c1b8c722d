"""Shared output helpers: errors on stderr without tracebacks, JSON for automation."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console

from citykit.errors import CitykitError

# Piped or redirected output (a file, `less`, CI logs) has no terminal width; rich would assume
# 80 columns and wrap every table cell. COLUMNS still wins when set.
_PIPE_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
console = Console(width=_PIPE_WIDTH)
err_console = Console(stderr=True)


def print_error(error: CitykitError) -> None:
    for index, line in enumerate(error.lines()):
        # markup=False: messages quote user input, which may contain [brackets].
        err_console.print(
            line if index else f"error: {line}", markup=False, highlight=False, soft_wrap=True
        )


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def say(text: str) -> None:
    """One plain line for people: never wrapped (scripts grep it), never read as markup."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def say_err(text: str) -> None:
    """Like say(), on stderr: progress while stdout carries a JSON document."""
    err_console.print(text, markup=False, highlight=False, soft_wrap=True)
