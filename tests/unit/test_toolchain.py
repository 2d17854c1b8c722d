"""The tool table's MinIO builds stay the releases of the images they replace: the module proxy
serves MinIO only by commit, so the release tag, its commit and go.mod's pseudo-version are three
constants that must agree."""

from __future__ import annotations

import pytest

from citykit import toolchain
from citykit.catalog import load_catalog

MINIO_BUILDS = (
    # tool, module, release, pseudo-version, commit, the upstream image it replaces
    (
        "minio",
        "github.com/minio/minio",
        toolchain.MINIO_RELEASE,
        toolchain.MINIO_PSEUDO_VERSION,
        toolchain.MINIO_COMMIT,
        "main",
    ),
    (
        "mc",
        "github.com/minio/mc",
        toolchain.MC_RELEASE,
        toolchain.MC_PSEUDO_VERSION,
        toolchain.MC_COMMIT,
        "backup",
    ),
)


@pytest.mark.parametrize(("name", "module", "release", "pseudo", "commit", "image"), MINIO_BUILDS)
def test_minio_tools_pin_their_release_commit(
    name: str, module: str, release: str, pseudo: str, commit: str, image: str
) -> None:
    tool = toolchain.BY_NAME[name]
    go_mod = (toolchain.TOOLS_SRC / tool.group / "go.mod").read_text()
    assert f"require {module} {pseudo}\n" in go_mod
    # A pseudo-version is v0.0.0-<commit time>-<commit[:12]>, and MinIO names each release after
    # its commit's time: 2025-04-22T22-12-26Z is 20250422221226.
    _, stamp, short = pseudo.split("-")
    assert short == commit[:12]
    assert stamp == release.removeprefix("RELEASE.").translate(str.maketrans("", "", "-TZ"))
    # Stamped as upstream's release build does, and static for an image with nothing else in it.
    assert tool.static and tool.version == release
    assert f"{module}/cmd.ReleaseTag={release} " in tool.ldflags
    assert f"{module}/cmd.CommitID={commit} " in tool.ldflags
    # The data lake's upstream images are these releases.
    minio = load_catalog().get("minio")
    if image == "main":
        assert minio.images["main"].tag == release
    else:
        assert minio.backup is not None and minio.backup.image.tag == release


def test_minio_version_stamp_is_the_release_time() -> None:
    ldflags = toolchain.BY_NAME["minio"].ldflags
    assert "github.com/minio/minio/cmd.Version=2025-04-22T22:12:26Z " in ldflags
    assert "github.com/minio/minio/cmd.CopyrightYear=2025 " in ldflags
    assert ldflags.endswith("github.com/minio/minio/cmd.ShortCommitID=0d7408fc9969")
