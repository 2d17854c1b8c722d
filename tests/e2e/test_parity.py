"""Parity of `validate` and the API server: whatever citykit accepts, Kubernetes accepts.

Hypothesis varies the values that flow into object names, labels, annotations and specs: the
city's, districts' and departments' slugs and names, the city's figures, component settings and
implementations, and the environment's name, domain, storage class, registry mirror, factors
and TLS, from valid through near-valid to hostile. An input `validate` refuses must end as a
located `ValidationFailed`. For one it accepts, every object `render` writes goes to the API
server in a server-side dry run (schemas, CRD schemas, strict field validation, admission: Pod
Security and the city's image allow-list ValidatingAdmissionPolicy), and so does the pod each
workload's controller would create from it, since admission judges pods, not their templates.
The server must also keep every label and annotation exactly as rendered (YAML round trip).

A refusal means a validation rule is missing: add it where the value is checked
(citykit/names.py, environment.py, profile.py) with a unit test, and keep the input as an
`@example` below. Examples are few (30 generated, three in four valid by construction, and the
explicit ones) and derandomized, so the tier stays deterministic and within its budget: about
a minute and a half on two cores, plus the cluster's start and stop.

The inputs are drawn by tests/e2e/parity_inputs.py; tests/e2e/parity_server.py sends what
render writes to the API server and checks what it keeps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck
from hypothesis import Phase
from hypothesis import event
from hypothesis import example
from hypothesis import given
from hypothesis import settings

from citykit import compiler
from citykit.errors import ValidationFailed
from citykit.input import names
from tests.clusters import Cluster
from tests.conftest import EXAMPLE
from tests.e2e.parity_inputs import Case
from tests.e2e.parity_inputs import cases
from tests.e2e.parity_inputs import profile_data
from tests.e2e.parity_server import CRD_PREFIX
from tests.e2e.parity_server import POLICY_KINDS
from tests.e2e.parity_server import Server
from tests.e2e.parity_server import assert_server_accepts


@pytest.fixture(scope="module")
def server(kube_cluster: Cluster) -> Iterator[Server]:
    the_server = Server(kube_cluster)
    # Custom resources are dry-run against their CRDs: installed here unless already there (then
    # they belong to whoever installed them and stay untouched).
    crds = [
        o
        for o in compiler.compile_city(EXAMPLE, "dev").objects()
        if o["kind"] == "CustomResourceDefinition"
    ]
    present = set(the_server.kubectl("get", "crd", "-o", "name").stdout.split())
    missing = [o for o in crds if f"{CRD_PREFIX}{o['metadata']['name']}" not in present]
    if missing:
        the_server.remember(missing)
        result = the_server.apply(missing)
        assert result.returncode == 0, result.stderr
        established = the_server.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            *(f"crd/{o['metadata']['name']}" for o in missing),
        )
        assert established.returncode == 0, established.stderr
    try:
        yield the_server
    finally:
        created = the_server.created
        for kind in (*POLICY_KINDS, "PriorityClass"):
            the_server.delete(kind, created.get(kind, ()), "--wait=false")
        # Deleting namespaces sends the namespace controller through every resource type of
        # each, half a minute of both cores for this module's. A cluster this session started is
        # discarded whole at its end, and no later test reads these cities' namespaces (no city
        # here is `yuhang`), so only a cluster given to the session gets them deleted.
        if not kube_cluster.started_here:
            the_server.delete("namespace", created.get("Namespace", ()), "--wait=false")
        # Waited for: a later test may install the same CRDs.
        the_server.delete("crd", created.get("CustomResourceDefinition", ()), "--wait=true")


# -- the property --------------------------------------------------------------------------------


def _write(directory: Path, profile: dict[str, Any], env: dict[str, Any]) -> tuple[Path, Path]:
    profile_path, env_path = directory / "city.yaml", directory / "env.yaml"
    profile_path.write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    env_path.write_text(yaml.safe_dump(env, allow_unicode=True), encoding="utf-8")
    return profile_path, env_path


def _env(extends: str, **values: Any) -> dict[str, Any]:
    return {"apiVersion": "citykit.io/v1alpha1", "kind": "Environment", "extends": extends} | values


LONGEST = "a" * names.SLUG_MAX
LONG_LABEL_DOMAIN = "x" * 63 + ".city.example"
LONGEST_DOMAIN = ".".join(["d" * 61] * 4)  # 247 characters; sso.<domain> is 251


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    # A shrink reruns the cluster round trip hundreds of times; the message names the object.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
@example(case=({}, _env("dev")))
@example(
    case=(
        {
            "slug": LONGEST,
            "districts": [{"slug": "b" * 20, "name": "x" * 128}],
            "departments": [{"slug": "c" * 20, "name": "部" * 128}],
        },
        _env("staging", name="e" * 20, domain=LONG_LABEL_DOMAIN, storageClass="a" * 253),
    )
)
@example(
    case=(
        {"name": "{{ 7*7 }} \"q\" 'a': - &x *y #c", "departments": []},
        _env(
            "prod",
            domain=LONGEST_DOMAIN,
            storageClass="fast.ssd.city.example",
            registryMirror="localhost:5000",
        ),
    )
)
@example(
    case=(
        {
            "layers": {
                "common": {
                    "api-gateway": {"implementation": "kong"},
                    "message-broker": {"implementation": "rabbitmq", "storageGi": 10**20},
                    "context-broker": {"enabled": True},
                },
                "sensing": {"video-gateway": {"enabled": True}},
            }
        },
        _env("staging", registryMirror="[::1]:5000/mirror", sizeFactor=10, replicaFactor=10),
    )
)
@example(
    case=(
        {"layers": {"common": {"message-broker": {"implementation": "nats"}}}},
        _env("local", sizeFactor=5e-324, replicaFactor=1e-9),
    )
)
# A derived volume over 8 PiB: the API server calls the request invalid.
@example(case=({"scale": {"population": 23223886, "dailyDataGb": 6371231.4}}, _env("prod")))
# Plain in PyYAML's YAML 1.1, a number or boolean to kubectl's Go YAML: written quoted.
@example(
    case=(
        {"name": "0o17", "districts": [{"slug": "y", "name": "y"}], "departments": []},
        _env("dev", name="n", domain="1e3.example"),
    )
)
# PriorityClass names starting with `system-` are the API server's own.
@example(case=({"slug": "system"}, _env("dev")))
# A C1 control failed render on its own YAML; U+2028 is a line break to YAML.
@example(case=({"name": "a\x8cb", "districts": [{"slug": "d", "name": "c\u2028d"}]}, _env("dev")))
def test_what_validate_accepts_the_api_server_accepts(server: Server, case: Case) -> None:
    changes, env = case
    with TemporaryDirectory(prefix="citykit-parity-") as directory:
        profile_path, env_path = _write(Path(directory), profile_data(changes), env)
        try:
            plan = compiler.plan(profile_path, str(env_path))
        except ValidationFailed as failure:
            assert failure.problems
            for problem in failure.problems:
                assert problem.message and problem.file, problem
            event("refused by validate")  # shown by --hypothesis-show-statistics
            return
        objects = compiler.compile_plan(plan).objects()
    assert_server_accepts(server, objects)
    event("accepted by validate and the API server")
