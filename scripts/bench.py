#!/usr/bin/env python3
"""Benchmarks (a script, not a test): compile/render time for the example city and for a city ten
times larger, each against baselines measured in the same run.

Baselines:
- `yaml-roundtrip`: parse + dump the same objects with PyYAML alone — the floor any tool that
  produces YAML pays; the ratio is citykit's overhead over plain serialisation.
- the 1x city for the 10x city: how rendering scales with the city's size.
With `--deploy`, also times, on a fresh local cluster, `citykit up` (first and no-op), a no-op
`preview` and `destroy`, against what a careful kubectl user does with the same objects on the
same cluster (CRDs and namespaces first, `apply --server-side`, then every Deployment Available and
every StatefulSet rolled out; `delete --wait`), for the example city and/or a megacity (30
districts, 200 departments), in `dev` (simulated nodes) or `local` (with the real node; root).

Usage: .venv/bin/python scripts/bench.py [--repeat N] [--deploy [--city example|megacity]...
       [--env dev|local] [--no-render]] [--json]"""

from __future__ import annotations

import argparse
import copy
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from citykit import compiler
from citykit import manifests

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


def megacity_profile() -> dict[str, Any]:
    """The megacity of the deployment targets: 30 districts, 200 departments, 25 M people,
    5 M devices, 800,000 msg/s at peak, 50 TB of data a day."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["city"] = {**data["city"], "name": "特大城市", "slug": "megacity"}
    data["scale"] = {
        "population": 25_000_000,
        "devices": 5_000_000,
        "peakMessagesPerSecond": 800_000,
        "videoChannels": 200_000,
        "dailyDataGb": 50_000,
    }
    data["districts"] = [{"slug": f"d{i:02d}", "name": f"区{i:02d}"} for i in range(30)]
    template = data["departments"][0]
    data["departments"] = [
        {**copy.deepcopy(template), "slug": f"dept-{i:03d}", "name": f"部门{i:03d}"}
        for i in range(200)
    ]
    return data


def _run(command: list[str], env: dict[str, str], timeout: float = 3600) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False, timeout=timeout
    )
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started


def _with_secret_values(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a careful kubectl user writes that `render` leaves out: values for the generated
    Secrets (the same value where one Secret mirrors another, as `citykit up` does)."""
    shared: dict[str, dict[str, str]] = {}
    result = []
    for obj in objects:
        annotations = obj["metadata"].get("annotations") or {}
        if obj["kind"] == "Secret" and "citykit.io/generate" in annotations:
            obj = copy.deepcopy(obj)
            group = annotations.get("citykit.io/same-as") or (
                f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
            )
            values = shared.setdefault(group, {})
            for key in annotations["citykit.io/generate"].split(","):
                values.setdefault(key, secrets.token_urlsafe(24))
            obj["stringData"] = {
                k: values[k] for k in annotations["citykit.io/generate"].split(",")
            }
        result.append(obj)
    return result


def _kubectl_baseline(
    objects: list[dict[str, Any]], kubectl: list[str], env: dict[str, str], work: Path
) -> tuple[float, float]:
    """(apply and wait ready, delete --wait) as a careful kubectl user does it: CRDs and
    namespaces first, waited for; then `apply --server-side` of everything; then every
    Deployment Available and every StatefulSet rolled out. Delete: the same objects, waited."""
    first = [o for o in objects if o["kind"] in ("CustomResourceDefinition", "Namespace")]
    rest = [o for o in objects if o not in first]
    (work / "first.yaml").write_text(manifests.dump(first))
    (work / "rest.yaml").write_text(manifests.dump(rest))
    apply = [*kubectl, "apply", "--server-side", "--force-conflicts"]
    started = time.perf_counter()
    _run([*apply, "-f", str(work / "first.yaml")], env)
    _run([*kubectl, "wait", "--for=condition=established", "crd", "--all"], env)
    _run([*apply, "-f", str(work / "rest.yaml")], env)
    for namespace in sorted(
        {o["metadata"]["namespace"] for o in rest if o["kind"] == "Deployment"}
    ):
        _run(
            [
                *kubectl,
                "wait",
                "-n",
                namespace,
                "--for=condition=Available",
                "deployment",
                "--all",
                "--timeout=900s",
            ],
            env,
        )
    for sts in (o for o in rest if o["kind"] == "StatefulSet"):
        _run(
            [
                *kubectl,
                "rollout",
                "status",
                "-n",
                sts["metadata"]["namespace"],
                f"statefulset/{sts['metadata']['name']}",
                "--timeout=900s",
            ],
            env,
        )
    applied = time.perf_counter() - started
    started = time.perf_counter()
    _run(
        [*kubectl, "delete", "--wait=true", "--ignore-not-found", "-f", str(work / "rest.yaml")],
        env,
    )
    _run(
        [*kubectl, "delete", "--wait=true", "--ignore-not-found", "-f", str(work / "first.yaml")],
        env,
    )
    return applied, time.perf_counter() - started


def bench_deploy(profile: Path, env_name: str) -> list[dict[str, Any]]:
    """citykit up (first, no-op), preview (no-op) and destroy of one city on a fresh local
    cluster, against kubectl applying (and waiting for) and deleting the same objects on the
    same cluster, measured in the same run."""
    from citykit.input import environment

    citykit = [sys.executable, "-m", "citykit.cli"]
    rows: list[dict[str, Any]] = []
    compiled = compiler.compile_city(profile, env_name)
    objects = compiled.objects()
    cluster = environment.load(env_name)[0].cluster.name
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            CITYKIT_STATE_DIR=str(Path(tmp) / "state"),
            PULUMI_CONFIG_PASSPHRASE="bench-only",
        )
        env.pop("KUBECONFIG", None)
        env.pop("CITYKIT_KUBECONFIG", None)
        city = ["-p", str(profile), "-e", env_name]
        _run([*citykit, "cluster", "up", *city], env)
        try:
            if compiled.plan.environment.cluster.real_node:
                _run([*citykit, "images", "build", *city], env)  # loads them into the node
            kubeconfig = Path(tmp) / "state" / "clusters" / cluster / "kubeconfig"
            kubectl = ["kubectl", "--kubeconfig", str(kubeconfig)]
            baseline_apply, baseline_delete = _kubectl_baseline(
                _with_secret_values(objects), kubectl, env, Path(tmp)
            )
            first = _run([*citykit, "up", *city, "--yes"], env)
            preview = _run([*citykit, "preview", *city, "--expect-no-changes"], env)
            noop = _run([*citykit, "up", *city, "--yes"], env)
            destroy = _run([*citykit, "destroy", *city, "--yes"], env)
        finally:
            _run([*citykit, "cluster", "down", "-e", env_name], env)

    def row(step: str, seconds: float, baseline: str, baseline_s: float, target: float) -> None:
        ratio = seconds / baseline_s
        rows.append(
            {
                "city": compiled.plan.slug,
                "env": env_name,
                "objects": len(objects),
                "step": step,
                "seconds": round(seconds, 1),
                "baseline": baseline,
                "baseline_s": round(baseline_s, 1),
                "ratio": round(ratio, 2),
                "target": target,
                "met": ratio <= target,
            }
        )

    big = len(objects) > 1000
    row("first up", first, "kubectl apply + wait ready", baseline_apply, 2.5 if big else 2.0)
    row("no-op up", noop, "no-op preview", preview, 1.5)
    row("destroy", destroy, "kubectl delete --wait", baseline_delete, 1.5)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--deploy", action="store_true", help="also time deployment")
    parser.add_argument(
        "--city",
        choices=("example", "megacity"),
        action="append",
        help="cities to deploy (repeatable; default: the example city)",
    )
    parser.add_argument("--env", default="dev", help="environment to deploy in (dev, local)")
    parser.add_argument("--no-render", action="store_true", help="skip the render benchmark")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {"render": [] if args.no_render else bench_render(args.repeat)}
    if args.deploy:
        results["deploy"] = []
        with tempfile.TemporaryDirectory() as tmp:
            for city in args.city or ["example"]:
                profile = EXAMPLE
                if city == "megacity":
                    profile = Path(tmp) / "megacity.yaml"
                    profile.write_text(yaml.safe_dump(megacity_profile(), allow_unicode=True))
                results["deploy"] += bench_deploy(profile, args.env)
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
    if results.get("deploy"):
        print(
            f"\n{'city':9} {'env':5} {'objects':>7} {'step':9} {'citykit s':>9} "
            f"{'baseline':28} {'base s':>7} {'ratio':>6} {'target':>6}"
        )
    for row in results.get("deploy", []):
        print(
            f"{row['city']:9} {row['env']:5} {row['objects']:>7} {row['step']:9} "
            f"{row['seconds']:>9} {row['baseline']:28} {row['baseline_s']:>7} "
            f"{row['ratio']:>6} {'<=' + str(row['target']):>6}{'' if row['met'] else '  MISSED'}"
        )


if __name__ == "__main__":
    main()
