"""The root command. Each subcommand lives in its own module and is registered here explicitly;
commands parse arguments, call the library and format output, nothing more."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from citykit.errors import CitykitError

app = typer.Typer(
    name="citykit",
    help="Blueprints for city-wide digital transformation platforms: "
    "city profile -> plan -> Kubernetes objects -> Pulumi deployment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Imported here so `citykit --help` stays fast and a broken optional module names itself.
    from citykit.cli import commands

    _plain_help_types()
    commands.register(app)


def _plain_help_types() -> None:
    """Help pages name what an option takes, and nothing for a flag: typer 0.29 prints `<bool>`
    after every flag (--help, --yes) as if it took a value, and `<list[str]>` after a repeatable
    option, which takes one value per use. Its options are built inside typer (the help option
    too), so the one place to say it is the method that names the type."""
    from typer.core import TyperOption

    original = TyperOption.display_type_rich
    if getattr(original, "citykit", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        shown = original(self, ctx)
        if shown and shown.startswith("<list[") and shown.endswith("]>"):
            return f"<{shown[6:-2]}>"
        return shown

    display_type_rich.citykit = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def main() -> None:
    """Entry point: run the app, turning every CitykitError into its message and exit code."""
    _register()
    try:
        # Not standalone, typer returns the code of an Exit (130 for Ctrl-C) instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except CitykitError as error:
        from citykit.cli import output

        output.print_error(error)
        sys.exit(error.exit_code)
    except typer.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as error:  # click usage errors arrive here in non-standalone mode
        exceptions = _click_exceptions()
        if isinstance(error, exceptions.ClickException):
            error.show()
            sys.exit(2 if isinstance(error, exceptions.UsageError) else 1)
        if type(error).__module__.startswith("pulumi.automation"):
            # An engine error outside an action's own handling: its message, not a traceback.
            sys.stderr.write(f"error: the Pulumi engine failed: {str(error).strip()[-2000:]}\n")
            sys.exit(1)
        if os.environ.get("CITYKIT_DEBUG"):
            raise
        sys.stderr.write(
            f"error: internal error: {type(error).__name__}: {error}\n"
            "hint: this is a citykit bug; run again with CITYKIT_DEBUG=1 for the traceback\n"
        )
        sys.exit(1)


def _click_exceptions() -> Any:
    """click's exception module: vendored inside typer since 0.20, a dependency before."""
    try:
        from typer._click import exceptions
    except ImportError:
        from click import exceptions  # type: ignore[import-not-found,no-redef,unused-ignore]
    return exceptions
