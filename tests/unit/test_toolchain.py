"""The tool table's MinIO builds stay the releases of the images they replace: the module proxy
serves MinIO only by commit, so the release tag, its commit and go.mod's pseudo-version are three
constants that must agree."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from citykit import go_build
from citykit import toolchain
from citykit.catalog import load_catalog
from citykit.errors import OperationFailed

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


# -- build recipes: tags, cgo, the bin directory ----------------------------------------------


def test_tags_and_cgo_are_part_of_the_recipe_and_absent_ones_keep_old_hashes() -> None:
    import hashlib
    from dataclasses import replace

    etcd = toolchain.BY_NAME["etcd"]
    legacy = f"{etcd.package}|{etcd.ldflags}|{etcd.static}"  # the recipe before tags existed
    assert etcd.fingerprint == hashlib.sha256(legacy.encode()).hexdigest()[:8]
    tagged = replace(etcd, tags=("seccomp",))
    fingerprints = {etcd.fingerprint, tagged.fingerprint, replace(tagged, cgo=True).fingerprint}
    assert len(fingerprints) == 3
    assert replace(tagged, tags=("other",)).fingerprint != tagged.fingerprint
    with pytest.raises(ValueError, match="static"):
        replace(etcd, static=True, cgo=True)


def test_the_engine_tools_are_built_as_upstream_builds_them(tmp_path: Path) -> None:
    dockerd, runc = toolchain.BY_NAME["dockerd"], toolchain.BY_NAME["runc"]
    command = go_build.build_command("go", dockerd, tmp_path / "dockerd")
    assert command[:3] == ["go", "build", "-tags=netgo,osusergo,static_build,nri_no_wasm"]
    assert command[-1] == "github.com/moby/moby/v2/cmd/dockerd"
    assert go_build.build_env(dockerd) == {"CGO_ENABLED": "0"}
    assert "-tags=seccomp,urfave_cli_no_docs" in go_build.build_command("go", runc, tmp_path)
    assert go_build.build_env(runc) == {"CGO_ENABLED": "1"}
    # A tool without tags builds with the command it always had.
    etcd = toolchain.BY_NAME["etcd"]
    assert go_build.build_command("go", etcd, tmp_path / "etcd") == [
        *("go", "build", "-gcflags=all=-dwarf=false", "-ldflags=-s -w"),
        *("-o", str(tmp_path / "etcd"), etcd.package),
    ]
    for tool in (dockerd, runc, toolchain.BY_NAME["kind"]):
        go_mod = (toolchain.TOOLS_SRC / tool.group / "go.mod").read_text()
        module = tool.package.split("/cmd/")[0]
        assert f"require {module} {tool.version}\n" in go_mod, tool.name


def test_runc_stays_off_the_path_the_real_node_runs_with(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The real node's containerd finds `runc` on PATH: Debian's, not the engine's."""
    monkeypatch.setenv("CITYKIT_CACHE_DIR", str(tmp_path))
    for name in ("runc", "kind"):
        tool = toolchain.BY_NAME[name]
        tool.home.mkdir(parents=True)
        tool.binary.write_text("#!/bin/sh\n")
        tool.binary.chmod(0o755)
    toolchain.bin_dir().mkdir(parents=True)
    (toolchain.bin_dir() / "runc").symlink_to(toolchain.BY_NAME["runc"].binary)  # an old link
    go_build.link_all()
    assert (toolchain.bin_dir() / "kind").resolve() == toolchain.BY_NAME["kind"].binary
    assert not (toolchain.bin_dir() / "runc").exists()


def test_install_builds_the_longest_modules_first_and_every_module_despite_a_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CITYKIT_CACHE_DIR", str(tmp_path))
    started: list[str] = []

    def build_group(group: str, tools: list[toolchain.Tool], log: Path) -> None:
        started.append(group)
        if group == "kwok":
            raise OperationFailed("kwok did not build")
        for tool in tools:
            tool.home.mkdir(parents=True)
            tool.binary.write_text("#!/bin/sh\n")
            tool.binary.chmod(0o755)

    monkeypatch.setattr(go_build, "_build_group", build_group)
    monkeypatch.setattr(go_build, "BUILDS_AT_ONCE", 1)  # the order, without a race
    with pytest.raises(OperationFailed, match="kwok"):
        go_build.install()
    assert started[:3] == ["kubernetes", "provider", "pulumi"]
    assert sorted(started) == sorted({tool.group for tool in toolchain.TOOLS})
    assert [tool.name for tool in toolchain.missing()] == ["kwok"]


def test_kube_routers_patch_applies_to_its_pinned_source_once() -> None:
    """The policy controller's sync pause is a patch of upstream's file at build time: it must
    find its text in the pinned version, and change the build recipe (so it is rebuilt)."""
    tool = toolchain.BY_NAME["kube-router"]
    (patch,) = tool.patches
    patched = go_build.patched_sources(tool, tool.group)
    assert list(patched) == [(patch.module, patch.path)]
    module = go_build.module_dir(tool.group, patch.module, tool.version)
    upstream = (module / patch.path).read_text()
    assert patched[(patch.module, patch.path)] == upstream.replace(patch.find, patch.replace)
    pause = f"time.After({toolchain.NETPOL_SYNC_PAUSE_SECONDS} * time.Second)"
    assert pause in patched[(patch.module, patch.path)] and pause not in upstream
    assert replace(tool, patches=()).fingerprint != tool.fingerprint
    stale = replace(patch, find="no such line\n")
    with pytest.raises(OperationFailed, match="does not apply"):
        go_build.patched_sources(replace(tool, patches=(stale,)), tool.group)
