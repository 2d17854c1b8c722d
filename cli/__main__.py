"""`python -m citykit.cli` runs the CLI (used by tests to run it in a subprocess)."""

from citykit.cli.main import main

main()
