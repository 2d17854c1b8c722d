"""checkov's Kubernetes checks over the rendered example city: zero failures; every skip is
declared (in the component or derived from its declarations) with a reason.

checkov pins libraries (packaging) that conflict with the Pulumi SDK, so it lives in its own
virtualenv under ~/.cache/citykit/checkov (`make checkov`, part of `make test`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from citykit import compiler
from citykit import testing
from tests.conftest import ENVIRONMENTS
from tests.conftest import EXAMPLE


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_checkov_reports_no_failures(tmp_path: Path, env: str) -> None:
    reports = testing.check_checkov(compiler.compile_city(EXAMPLE, env), tmp_path / "out")
    assert reports[0]["summary"]["passed"] > 1000


def test_reports_are_remembered_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same files scanned by the same checkov: its report from the cache, naming the
    directory scanned now; other files, or another checkov version, scan again."""
    venv = tmp_path / "venv"
    calls = tmp_path / "calls"
    binary = venv / "bin" / "checkov"
    binary.parent.mkdir(parents=True)
    binary.write_text(
        "#!/bin/sh\n"
        f"echo x >> {calls}\n"
        'printf \'{"check_type": "kubernetes", "path": "%s"}\' "$2"\n'
    )
    binary.chmod(0o755)
    version = venv / "lib" / "python3.11" / "site-packages" / "checkov-1.0.dist-info"
    version.mkdir(parents=True)
    monkeypatch.setenv("CITYKIT_CHECKOV", str(binary))
    monkeypatch.setenv("CITYKIT_CACHE_DIR", str(tmp_path / "cache"))

    def scan(name: str, content: str) -> tuple[str, int]:
        directory = tmp_path / name
        directory.mkdir(exist_ok=True)
        (directory / "a.yaml").write_text(content)
        reports = testing.run_checkov(directory)
        return reports[0]["path"], len(calls.read_text().splitlines())

    assert scan("one", "kind: A\n") == (str(tmp_path / "one"), 1)
    assert scan("two", "kind: A\n") == (str(tmp_path / "two"), 1)
    assert scan("two", "kind: B\n") == (str(tmp_path / "two"), 2)
    version.rename(version.with_name("checkov-1.1.dist-info"))
    assert scan("three", "kind: A\n") == (str(tmp_path / "three"), 3)
