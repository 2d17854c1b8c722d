"""Helpers for testing components and cities, as cdk8s' `Testing` is for charts: compile the
example city or a variant of it (a profile overlay, merged as an environment's `profile:` overlay
is), build one component's objects, and check objects against Kubernetes' OpenAPI schemas and
checkov's Kubernetes checks — for any component of the registry, including those the example city
does not choose (`covering_variants`).

The checks raise AssertionError naming what failed. kubernetes-validate and checkov are test tools
(the `test` extra; checkov in its own virtualenv, `make checkov`), imported or run only when a
check is called. Compiled cities are cached per variant and environment: treat them as read-only."""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from citykit import compiler
from citykit import manifests
from citykit import paths
from citykit.catalog import load_catalog
from citykit.compiler import Compiled
from citykit.contract.registry import Registry
from citykit.conventions import Object
from citykit.errors import ToolMissing
from citykit.input.environment import deep_merge

# The source checkout's example city, the base of every variant unless another is given.
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "yuhang.yaml"
# The Kubernetes release whose OpenAPI schemas objects are validated against.
KUBERNETES_VERSION = "1.37.0"

Overlay = Mapping[str, Any]


# -- cities ------------------------------------------------------------------------------------
def variant(overlay: Overlay | None = None, base: Path = EXAMPLE) -> dict[str, Any]:
    """The profile at `base` with `overlay` merged onto it: mappings key by key, anything else
    replaced, a null removing the key."""
    data: dict[str, Any] = yaml.safe_load(base.read_text(encoding="utf-8"))
    merged: dict[str, Any] = deep_merge(data, dict(overlay or {}))
    return merged


def variant_file(overlay: Overlay | None = None, base: Path = EXAMPLE) -> Path:
    """The variant written to a profile file (once per variant, outside the source tree), for
    what reads a path: `compiler.compile_city`, the CLI."""
    return _written(_key(overlay), str(base))


def compile_variant(overlay: Overlay | None, env: str, base: Path = EXAMPLE) -> Compiled:
    """The variant compiled for environment `env` (cached: the same object on every call)."""
    return _compiled(_key(overlay), env, str(base))


def choosing(*names: str, registry: Registry | None = None) -> dict[str, Any]:
    """The overlay that turns each named component on as its capability's implementation."""
    reg = registry or load_catalog()
    layers: dict[str, Any] = {}
    for name in names:
        cls = reg.get(name)
        layers.setdefault(cls.layer.key, {})[cls.capability] = {"implementation": name}
    return {"layers": layers}


def covering_variants(
    base: Path = EXAMPLE, registry: Registry | None = None
) -> list[dict[str, Any]]:
    """Overlays that, with the city at `base`, render every component of the registry at least
    once: the first chooses the first implementation of each capability that the city does not
    use, the second the next one, and so on."""
    reg = registry or load_catalog()
    used = {c.name for c in compiler.plan(variant_file(None, base), "dev", reg).components}
    left = [
        [c.name for c in implementations if c.name not in used]
        for implementations in reg.capabilities().values()
    ]
    rounds = max((len(names) for names in left), default=0)
    return [
        choosing(*(names[i] for names in left if len(names) > i), registry=reg)
        for i in range(rounds)
    ]


def _key(overlay: Overlay | None) -> str:
    return json.dumps(overlay or {}, sort_keys=True, ensure_ascii=False)


@functools.cache
def _variants_dir() -> Path:
    """One directory for every variant profile this process writes, removed when it exits."""
    directory = tempfile.TemporaryDirectory(prefix="citykit-variants-")
    atexit.register(directory.cleanup)
    return Path(directory.name)


@functools.cache
def _written(key: str, base: str) -> Path:
    directory = Path(tempfile.mkdtemp(dir=_variants_dir()))
    path = directory / Path(base).name
    data = variant(json.loads(key), Path(base))
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@functools.cache
def _compiled(key: str, env: str, base: str) -> Compiled:
    return compiler.compile_city(_written(key, base), env)


# -- components --------------------------------------------------------------------------------
def component_objects(compiled: Compiled, name: str, kind: str | None = None) -> list[Object]:
    """The objects of component `name` in `compiled` (of `kind` only, when given)."""
    return [
        obj
        for unit in compiled.units
        if unit.component.name == name
        for obj in unit.objects
        if kind is None or obj["kind"] == kind
    ]


def build(name: str, env: str = "dev", overlay: Overlay | None = None) -> list[Object]:
    """One component's objects, rendered in the example city (with `overlay`) for `env`."""
    return component_objects(compile_variant(overlay, env), name)


# -- schema ------------------------------------------------------------------------------------
# Canonical JSON of every object already validated in this process: the cities and environments
# tests render share most of their objects, and each distinct one is validated once.
_VALIDATED: set[str] = set()


def custom_kinds(objects: list[Object]) -> set[tuple[str, str]]:
    """(group, kind) of every custom resource the rendered CRDs define."""
    return {
        (obj["spec"]["group"], obj["spec"]["names"]["kind"])
        for obj in objects
        if obj["kind"] == "CustomResourceDefinition"
    }


def validate_strictly(obj: Object) -> None:
    """kubernetes-validate's strict OpenAPI check, once per distinct object (by content)."""
    import kubernetes_validate

    key = json.dumps(obj, sort_keys=True, ensure_ascii=False)
    if key not in _VALIDATED:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        _VALIDATED.add(key)


def check_schemas(objects: list[Object]) -> int:
    """Every object strictly valid, except custom resources of the objects' own CRDs (checked by
    their CRD's schema on the API server, not by OpenAPI); returns how many were checked."""
    defined = custom_kinds(objects)
    checked = 0
    for obj in objects:
        group = obj["apiVersion"].rsplit("/", 1)[0] if "/" in obj["apiVersion"] else ""
        if (group, obj["kind"]) not in defined:
            validate_strictly(obj)
            checked += 1
    return checked


# -- checkov -----------------------------------------------------------------------------------
def checkov() -> Path:
    binary = Path(
        os.environ.get("CITYKIT_CHECKOV") or paths.cache_dir() / "checkov" / "bin" / "checkov"
    )
    if not binary.is_file():
        raise ToolMissing(f"checkov not found at {binary}", hint="run `make checkov`")
    return binary


# checkov's reports on this machine, by content: the same files scanned by the same checkov
# give the same report, and a scan costs seconds of CPU (the unit tier ran ten of them per run).
CHECKOV_ARGS = ("--framework", "kubernetes", "-o", "json", "--compact", "--skip-download")
# Where the scanned directory's path stood in a stored report (reports name absolute paths).
SCANNED = "@@citykit-scanned-directory@@"


def run_checkov(directory: Path) -> list[dict[str, Any]]:
    """checkov's Kubernetes checks over a rendered directory: its JSON reports (remembered by
    content under the cache directory, see _checkov_key)."""
    directory = directory.resolve()
    key = _checkov_key(directory)
    stored = paths.cache_dir() / "checkov-reports" / f"{key}.json" if key else None
    if stored is not None and stored.is_file():
        text = stored.read_text(encoding="utf-8").replace(SCANNED, str(directory))
    else:
        result = subprocess.run(
            [str(checkov()), "-d", str(directory), *CHECKOV_ARGS],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
            env={**os.environ, "BC_API_KEY": "", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
        )
        text = result.stdout
        json.loads(text)  # a report, not an error, before it is remembered
        if stored is not None:
            stored.parent.mkdir(parents=True, exist_ok=True)
            partial = stored.with_suffix(f".{os.getpid()}.partial")
            partial.write_text(text.replace(str(directory), SCANNED), encoding="utf-8")
            partial.replace(stored)
    reports = json.loads(text)
    return reports if isinstance(reports, list) else [reports]


def _checkov_key(directory: Path) -> str | None:
    """A digest of checkov's version, its arguments and every scanned file (path and bytes);
    None where the version cannot be read (a checkov given by CITYKIT_CHECKOV elsewhere), and
    then nothing is remembered."""
    versions = sorted(checkov().parent.parent.glob("lib/python*/site-packages/checkov-*.dist-info"))
    if len(versions) != 1:
        return None
    digest = hashlib.sha256(f"{versions[0].name}\0{' '.join(CHECKOV_ARGS)}\0".encode())
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(directory)}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def check_checkov(compiled: Compiled, directory: Path) -> list[dict[str, Any]]:
    """Render into `directory` and scan: no failed check, no parsing error, every skip with its
    reason. Returns checkov's reports."""
    manifests.write(compiled, directory)
    reports = run_checkov(directory)
    failed = [
        (f["check_id"], f["resource"]) for r in reports for f in r["results"]["failed_checks"]
    ]
    if failed:
        raise AssertionError(f"checkov checks failed: {failed}")
    summary = reports[0]["summary"]
    if summary["parsing_errors"] != 0:
        raise AssertionError(f"checkov could not parse {summary['parsing_errors']} files")
    skipped = [s for r in reports for s in r["results"]["skipped_checks"]]
    if len(skipped) != summary["skipped"]:
        raise AssertionError(f"{len(skipped)} skips listed, {summary['skipped']} counted")
    unexplained = [
        check["check_id"]
        for check in skipped
        if len(check["check_result"].get("suppress_comment", "")) <= 20
    ]
    if unexplained:
        raise AssertionError(f"checkov skips without a reason: {unexplained}")
    return reports
