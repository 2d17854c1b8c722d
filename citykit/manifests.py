"""Writing compiled objects as YAML files in a predictable layout:

    DIR/kustomization.yaml               every file, in apply order (graph order)
    DIR/<clause>-<layer>/<component>.yaml  that component's objects, in apply order

Folder names sort in reference-model order. The output directory is replaced as a whole, so a
component that disappears from the plan leaves no stale file behind; a directory citykit did not
write is never touched."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from citykit.compiler import Compiled
from citykit.compiler import Unit
from citykit.errors import InputError

MARKER = ".citykit-render"


class _Dumper(yaml.SafeDumper):
    """PyYAML writes YAML 1.1 for its own reader; kubectl and kustomize read with Go's yaml.v2,
    which also takes `y` and `n` for booleans, `0o17`, `0X1F` and `1e3` for numbers and
    `2024-1-2 3:4:5` for a time. A string either would misread is written quoted (found by
    tests/e2e/test_parity.py: kubectl refused a Namespace whose city was named 0o17).

    Objects that share a part (a pass that reuses a dict) are written out in full each time,
    never as an anchor and its aliases, which a reviewer and some tools read badly."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


for _tag, _pattern, _first in (
    ("bool", r"^[yYnN]$", "yYnN"),
    ("int", r"^[-+]?(?:[0-9_]+|0[xXoObB][0-9a-fA-F_]+)$", "-+0123456789"),
    ("float", r"^[-+]?(?:\.[0-9_]+|[0-9_]+(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9_]+)?$", "-+.0123456789"),
    ("timestamp", r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}", "0123456789"),
):
    _Dumper.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))


def dump(objects: list[dict[str, Any]]) -> str:
    """Deterministic multi-document YAML: key order as built, Unicode kept, no line folding;
    every string read back as the same string by PyYAML and by Go's YAML."""
    return yaml.dump_all(
        objects,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        explicit_start=True,
        default_flow_style=False,
        width=10_000,
    )


def unit_path(unit: Unit) -> str:
    layer = unit.component.layer
    return f"{layer.clause}-{layer.key}/{unit.component.name}.yaml"


def files(compiled: Compiled) -> dict[str, str]:
    """Relative path -> file content, for every file `write` produces."""
    result = {unit_path(unit): dump(list(unit.objects)) for unit in compiled.units}
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [unit_path(unit) for unit in compiled.units],
    }
    result["kustomization.yaml"] = yaml.safe_dump(kustomization, sort_keys=False)
    return result


def write(compiled: Compiled, out: Path) -> dict[str, str]:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise InputError(
            f"{out} exists and was not written by citykit render",
            hint="choose an empty or new directory",
        )
    content = files(compiled)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for relative, text in content.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        (staging / MARKER).write_text("written by citykit render; replaced on every render\n")
        if out.exists():
            old = out.with_name(f".{out.name}-old-{os.getpid()}")
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old)
        else:
            staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return content
