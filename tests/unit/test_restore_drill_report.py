"""The restore drill in the compliance report: a recent passed drill closes the backup-recovery
gap; none, a stale one, a failed or skipped one or an unreadable record leaves it open."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from citykit import compiler
from tests.conftest import EXAMPLE


def _backup_family(record: dict[str, Any] | None, today: date) -> dict[str, Any]:
    from citykit.reports import compliance

    data = compliance.report(compiler.compile_city(EXAMPLE, "local"), record, today)
    family: dict[str, Any] = next(
        f for f in data["mlps"]["families"] if f["family"] == "backup-recovery"
    )
    return family


def test_a_recent_passed_drill_closes_the_restore_drill_gap() -> None:
    record = {
        "at": "2026-11-25T21:00:00+00:00",
        "results": [
            {"component": "postgis", "status": "passed", "detail": "marker found"},
            {"component": "victoria-metrics", "status": "skipped", "detail": "simulated"},
        ],
    }
    family = _backup_family(record, date(2026, 12, 1))
    assert any("restore drill passed on 2026-11-25 (postgis)" in c for c in family["controls"])
    assert not any("restore drills" in g for g in family["gaps"])


@pytest.mark.parametrize(
    ("record", "today"),
    [
        (None, date(2026, 11, 25)),
        (
            {
                "at": "2026-01-01T00:00:00+00:00",
                "results": [{"component": "postgis", "status": "passed"}],
            },
            date(2026, 11, 25),
        ),
        (
            {
                "at": "2026-11-25T00:00:00+00:00",
                "results": [
                    {"component": "postgis", "status": "failed"},
                    {"component": "minio", "status": "passed"},
                ],
            },
            date(2026, 11, 25),
        ),
        (
            {
                "at": "2026-11-25T00:00:00+00:00",
                "results": [{"component": "postgis", "status": "skipped"}],
            },
            date(2026, 11, 25),
        ),
        ({"at": "yesterday", "results": []}, date(2026, 11, 25)),
    ],
    ids=["never", "stale", "one-failed", "all-skipped", "unreadable"],
)
def test_no_recent_passed_drill_leaves_the_gap_open(
    record: dict[str, Any] | None, today: date
) -> None:
    family = _backup_family(record, today)
    assert any(g.startswith("regular restore drills") for g in family["gaps"])
    assert not any("restore drill passed" in c for c in family["controls"])
