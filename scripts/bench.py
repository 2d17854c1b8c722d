#!/usr/bin/env python3
"""Benchmarks (a script, not a test): compile/render time for the example city and for a city ten
times larger, each against baselines measured in the same run.

Baselines:
- `yaml-roundtrip`: parse + dump the same objects with PyYAML alone — the floor any tool that
  produces YAML pays; the ratio is citykit's overhead over plain serialisation.
- the 1x city for the 10x city: how rendering scales with the city's size.
With `--deploy`, also times `citykit up` (first and no-op) and `destroy` on the local cluster
against `kubectl apply --server-side` / `kubectl delete` of the same rendered manifests.

Usage: .venv/bin/python scripts/bench.py [--repeat N] [--deploy] [--json]"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from citykit import compiler, manifests

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "yuhang.yaml"


def scaled_profile(factor: int) -> dict[str, Any]:
    """The example city with every figure, district and department multiplied by `factor`."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    scale = data["scale"]
    for key in scale:
        scale[key] = scale[key] * factor
    districts, departments = data["districts"], data["departments"]
    data["districts"] = [
        {**d, "slug": f"{d['slug']}-{i}", "name": f"{d['name']}{i}"}
        for i in range(factor)
        for d in districts
    ]
    data["departments"] = [
        {**copy.deepcopy(d), "slug": f"{d['slug']}-{i}", "name": f"{d['name']}{i}"}
        for i in range(factor)
        for d in departments
    ]
    return data


def timed(action: Callable[[], object], repeat: int) -> float:
    """Median wall time of `repeat` runs, in seconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def bench_render(repeat: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base_seconds = 0.0
        for factor in (1, 10):
            profile = work / f"city-{factor}x.yaml"
            profile.write_text(yaml.safe_dump(scaled_profile(factor), allow_unicode=True))
            for env in ("dev", "prod"):
                out = work / f"out-{factor}-{env}"
                compiled = compiler.compile_city(profile, env)
                objects = compiled.objects()
                render = timed(
                    lambda p=profile, e=env, o=out: manifests.write(compiler.compile_city(p, e), o),
                    repeat,
                )
                text = manifests.dump(objects)
                floor = timed(lambda t=text: manifests.dump(list(yaml.safe_load_all(t))), repeat)
                if factor == 1 and env == "prod":
                    base_seconds = render
                rows.append(
                    {
                        "city": f"{factor}x",
                        "env": env,
                        "objects": len(objects),
                        "components": len(compiled.units),
                        "render_s": round(render, 4),
                        "yaml_roundtrip_s": round(floor, 4),
                        "ratio_vs_yaml": round(render / floor, 2) if floor else None,
                    }
                )
        for row in rows:
            if row["env"] == "prod":
                row["ratio_vs_1x_prod"] = round(row["render_s"] / base_seconds, 2)
    return rows


def _run(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started


def bench_deploy() -> list[dict[str, Any]]:
    """citykit up (first, no-op) and destroy of the dev city on a fresh local cluster, against
    kubectl applying and deleting the same rendered manifests on the same cluster."""
    citykit = [sys.executable, "-m", "citykit.cli"]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, CITYKIT_STATE_DIR=str(Path(tmp) / "state"))
        env.pop("KUBECONFIG", None)
        profile = str(EXAMPLE)
        _run([*citykit, "cluster", "up", "-p", profile, "-e", "dev"], env)
        try:
            kubeconfig = Path(tmp) / "state" / "clusters" / "citykit-dev" / "kubeconfig"
            kubectl = ["kubectl", "--kubeconfig", str(kubeconfig)]
            out = Path(tmp) / "rendered"
            manifests.write(compiler.compile_city(EXAMPLE, "dev"), out)
            objects = len(compiler.compile_city(EXAMPLE, "dev").objects())
            files = sorted(str(p) for p in out.rglob("*.yaml") if p.name != "kustomization.yaml")
            apply = [*kubectl, "apply", "--server-side", "--force-conflicts"]
            # CRDs (and the namespaces) go first and are waited for, as any kubectl user must do
            # before applying custom resources; then everything.
            crds = Path(tmp) / "crds.yaml"
            crds.write_text(
                manifests.dump(
                    [
                        o
                        for o in compiler.compile_city(EXAMPLE, "dev").objects()
                        if o["kind"] in ("CustomResourceDefinition", "Namespace")
                    ]
                )
            )
            baseline_apply = _run([*apply, "-f", str(crds)], env)
            baseline_apply += _run(
                [*kubectl, "wait", "--for=condition=established", "crd", "--all"], env
            )
            baseline_apply += _run([*apply, *[a for f in files for a in ("-f", f)]], env)
            baseline_delete = _run(
                [
                    *kubectl,
                    "delete",
                    "--wait=true",
                    "--ignore-not-found",
                    *[a for f in reversed(files) for a in ("-f", f)],
                ],
                env,
            )
            first = _run([*citykit, "up", "-p", profile, "-e", "dev", "--yes"], env)
            noop = _run([*citykit, "up", "-p", profile, "-e", "dev", "--yes"], env)
            destroy = _run([*citykit, "destroy", "-p", profile, "-e", "dev", "--yes"], env)
        finally:
            _run([*citykit, "cluster", "down", "-e", "dev"], env)
    rows.append(
        {
            "step": "first up",
            "objects": objects,
            "seconds": round(first, 1),
            "baseline": "kubectl apply --server-side",
            "baseline_s": round(baseline_apply, 1),
            "ratio": round(first / baseline_apply, 2),
        }
    )
    rows.append(
        {
            "step": "no-op up",
            "objects": objects,
            "seconds": round(noop, 1),
            "baseline": "kubectl apply --server-side",
            "baseline_s": round(baseline_apply, 1),
            "ratio": round(noop / baseline_apply, 2),
        }
    )
    rows.append(
        {
            "step": "destroy",
            "objects": objects,
            "seconds": round(destroy, 1),
            "baseline": "kubectl delete --wait",
            "baseline_s": round(baseline_delete, 1),
            "ratio": round(destroy / baseline_delete, 2),
        }
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--deploy", action="store_true", help="also time deployment")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {"render": bench_render(args.repeat)}
    if args.deploy:
        results["deploy"] = bench_deploy()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{'city':5} {'env':5} {'comps':>5} {'objects':>7} {'render s':>9} {'yaml s':>8} "
        f"{'x yaml':>7} {'x 1x':>6}"
    )
    for row in results["render"]:
        print(
            f"{row['city']:5} {row['env']:5} {row['components']:>5} {row['objects']:>7} "
            f"{row['render_s']:>9.4f} {row['yaml_roundtrip_s']:>8.4f} "
            f"{row['ratio_vs_yaml']:>7} {row.get('ratio_vs_1x_prod', ''):>6}"
        )
    for row in results.get("deploy", []):
        print(row)


if __name__ == "__main__":
    main()
