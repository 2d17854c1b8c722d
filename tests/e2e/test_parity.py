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
a minute and a half on two cores, plus the cluster's start and stop."""

from __future__ import annotations

import copy
import json
import subprocess
import time
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
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
from hypothesis import strategies as st

from citykit import compiler
from citykit import manifests
from citykit.errors import ValidationFailed
from citykit.input import names
from citykit.input.environment import SHIPPED
from citykit.objects.render import Object
from tests.clusters import Cluster
from tests.conftest import EXAMPLE
from tests.conftest import example_data

MANAGER = "citykit-parity"
# Cities made here never take the example's slug: the deploy tests own `yuhang` on this cluster.
BASE_SLUG = "parity"
# What dry-run pods and namespaced objects need to exist for real: their namespace, the
# ServiceAccount and PriorityClass a pod names (admission looks them up), and the admission
# policy that is to judge them. Each is itself checked by that real apply.
REAL_KINDS = (
    "Namespace",
    "PriorityClass",
    "ServiceAccount",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
)
CRD_PREFIX = "customresourcedefinition.apiextensions.k8s.io/"
POLICY_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
CANARY_IMAGE = "parity.invalid/refused:1"
ALLOW_LIST_DENIAL = "image registry not on the city's allow-list"

# -- inputs ------------------------------------------------------------------------------------

INJECTIONS = (
    'x"\nkind: ClusterRoleBinding',
    "x\n---\napiVersion: v1",
    "{{ 7*7 }}",
    "{% raw %}x",
    "${jndi:ldap://x.example/a}",
    "$(id)",
    "; rm -rf /",
    "x' OR '1'='1",
    "../../etc/passwd",
    "a: b",
    "- x",
    "&a *a !!python/object:os.system",
    "\u202e\u200bx",
    "x\x7f",
    "a" * 300,
)
hostile = st.one_of(st.sampled_from(INJECTIONS), st.text(max_size=40))


def either(valid: st.SearchStrategy[Any], *near: Any, edgy: bool) -> st.SearchStrategy[Any]:
    """`valid`; in an edgy case also near-valid values and hostile strings."""
    return st.one_of(valid, st.sampled_from(near), hostile) if edgy else valid


# Display names are free text: anything one line may hold (controls and line separators are
# refused by a rule, so valid cases leave them out; hostile ones bring them).
DISPLAY_NAMES = (
    "杭州市余杭区",
    'O\'Brien "Harbour" City',
    "{{ city.name }} {% if x %}",
    "${jndi:ldap://x.example/a}",
    "a: b # not a comment",
    "- [x] &y *z !tag %p @q `r` | >",
    "<script>alert(1)</script>",
    "null",
    "0o17",
    "~",
    "🏙️ 智慧城市 ١٢٣",
    "\u202eevil\u200b",
    "x" * 128,
    " leading and trailing ",
)
_REFUSED = "".join(map(chr, (*range(0x20), *range(0x7F, 0xA0)))) + "\u2028\u2029\ufffe\uffff"
display_names = st.one_of(
    st.sampled_from(DISPLAY_NAMES),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters=_REFUSED), min_size=1),
)
BAD_DISPLAY_NAMES = ("", "x" * 129, "two\nlines", "tab\there", "nul\x00")

valid_slugs = st.from_regex(names.label_pattern(names.SLUG_MAX), fullmatch=True).filter(
    lambda slug: slug != "yuhang"
)
NEAR_SLUGS = ("Parity", "a" * 21, "-city", "city-", "9city", "ci_ty", "ci ty", "", "ci.ty", "città")

_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
_top = st.from_regex(r"[a-z]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
valid_domains = st.builds(
    lambda labels, top: ".".join([*labels, top]), st.lists(_label, max_size=3), _top
).filter(lambda domain: len(domain) <= names.DOMAIN_MAX)
NEAR_DOMAINS = (
    "City.Example",
    "city.example.",
    "city..example",
    "-city.example",
    "city_x.example",
    "10.0.0.1",
    "城市.example",
    "xn--fiq228c.example",
    "a" * 64 + ".example",
    ("a" * 62 + ".") * 4 + "example",
)
valid_storage_classes = st.one_of(
    st.from_regex(
        r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?){0,3}",
        fullmatch=True,
    ),
    st.sampled_from(("fast.ssd.city.example", "a" * 253, "0")),
)
NEAR_STORAGE_CLASSES = ("Fast", "fast_ssd", "fast.", ".fast", "a" * 254)
valid_registries = st.one_of(
    st.sampled_from(
        (
            "localhost",
            "localhost:5000",
            "registry.city.example/mirror",
            "reg.example:443/a/b__c",
            "[::1]:5000/mirror",
            "10.0.0.1:5000",
            "Registry.Example/a.b/c-d",
        )
    ),
    st.builds(
        lambda host, path: f"{host}.example{path}",
        _label,
        st.sampled_from(("", "/mirror", ":5000", ":5000/a/b", "/a.b/c__d/e-f")),
    ),
)
NEAR_REGISTRIES = ("mirror", "r.example:0", "r.example/UP", "https://r.example", "r.example/a//b")
valid_factors = st.floats(min_value=0, max_value=10, exclude_min=True)
NEAR_FACTORS = (0, -1, 10.5, float("nan"), float("inf"), "2", True)
valid_emails = st.sampled_from(
    ("platform@city.example", "o'brien+ops@city.example", "a.b-c@x.example")
)
valid_acme_servers = st.sampled_from(
    (
        "https://acme.city.example/directory",
        "https://[::1]:8443/dir?x=1&y='a'",
        "https://10.0.0.1/acme/dir",
        "https://acme.example:14000/dir;p=1/(x)*",
    )
)


def tls(edgy: bool) -> st.SearchStrategy[dict[str, Any]]:
    acme = st.fixed_dictionaries(
        {
            "issuer": st.just("acme"),
            "acmeServer": either(
                valid_acme_servers, "https://acme.example:0/d", "http://acme.example/d", edgy=edgy
            ),
            "email": either(valid_emails, "@city.example", "ops@localhost", edgy=edgy),
        }
    )
    if edgy:
        acme = st.one_of(acme, st.fixed_dictionaries({"issuer": st.just("acme")}))
    return st.one_of(st.fixed_dictionaries({"issuer": st.sampled_from(("selfsigned", "ca"))}), acme)


def environments(edgy: bool) -> st.SearchStrategy[dict[str, Any]]:
    """An environment file extending a shipped one, with some of its values replaced."""
    return st.fixed_dictionaries(
        {
            "apiVersion": st.just("citykit.io/v1alpha1"),
            "kind": st.just("Environment"),
            "extends": st.sampled_from(SHIPPED),
        },
        optional={
            "name": either(valid_slugs, *NEAR_SLUGS, edgy=edgy),
            "domain": either(valid_domains, *NEAR_DOMAINS, edgy=edgy),
            "storageClass": either(valid_storage_classes, *NEAR_STORAGE_CLASSES, edgy=edgy),
            "registryMirror": either(valid_registries, *NEAR_REGISTRIES, edgy=edgy),
            "replicaFactor": either(valid_factors, *NEAR_FACTORS, edgy=edgy),
            "sizeFactor": either(valid_factors, *NEAR_FACTORS, edgy=edgy),
            "tls": tls(edgy),
            "localImages": st.booleans(),
        },
    )


def places(edgy: bool, **optional: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Districts or departments: 1-4 of them, slugs unique unless the case is edgy."""
    entry = st.fixed_dictionaries(
        {
            "slug": either(valid_slugs, *NEAR_SLUGS, edgy=edgy),
            "name": either(display_names, *BAD_DISPLAY_NAMES, edgy=edgy),
        },
        optional=optional,
    )
    unique = None if edgy else (lambda item: item["slug"])
    return st.lists(entry, min_size=1, max_size=4, unique_by=unique)


def quotas(edgy: bool) -> st.SearchStrategy[dict[str, Any]]:
    low, high = (0, 1) if edgy else (1, 0)
    return st.fixed_dictionaries(
        {},
        optional={
            "cpu": st.integers(low, 100_000 + high),
            "memoryGi": st.integers(low, 1_000_000 + high),
            "storageGi": st.integers(low, 10_000_000 + high),
            "pods": st.integers(low, 100_000 + high),
        },
    )


scales = st.fixed_dictionaries(
    {"population": st.integers(1, 100_000_000)},
    optional={
        "devices": st.integers(0, 1_000_000_000),
        "peakMessagesPerSecond": st.integers(0, 100_000_000),
        "videoChannels": st.integers(0, 10_000_000),
        "dailyDataGb": st.floats(0, 10_000_000),
    },
)
replicas = st.integers(1, 64)
storage = st.one_of(st.integers(1, 1_000_000), st.just(10**20))
# Capabilities whose settings or implementations change what is rendered, with the choices.
LAYERS: dict[tuple[str, str], st.SearchStrategy[dict[str, Any]]] = {
    ("sensing", "device-broker"): st.fixed_dictionaries(
        {"implementation": st.sampled_from(("emqx", "mosquitto"))},
        optional={"replicas": replicas},
    ),
    ("sensing", "video-gateway"): st.fixed_dictionaries(
        {"enabled": st.booleans()}, optional={"replicas": st.integers(1, 128)}
    ),
    ("common", "api-gateway"): st.fixed_dictionaries(
        {"implementation": st.sampled_from(("apisix", "kong"))}, optional={"replicas": replicas}
    ),
    ("common", "context-broker"): st.fixed_dictionaries({"enabled": st.booleans()}),
    ("common", "message-broker"): st.one_of(
        st.fixed_dictionaries(
            {"implementation": st.sampled_from(("kafka", "nats"))},
            optional={
                "replicas": replicas,
                "partitions": st.integers(1, 10_000),
                "storageGi": storage,
            },
        ),
        st.fixed_dictionaries(
            {"implementation": st.just("rabbitmq")},
            optional={"replicas": replicas, "storageGi": storage},
        ),
    ),
    ("data", "data-lake"): st.fixed_dictionaries(
        {}, optional={"replicas": replicas, "storageGi": storage}
    ),
    ("data", "stream-processing"): st.fixed_dictionaries(
        {}, optional={"replicas": st.integers(1, 256)}
    ),
    ("operations", "logging"): st.fixed_dictionaries(
        {}, optional={"storageGi": storage, "retentionDays": st.integers(1, 3650)}
    ),
    ("applications", "one-network-services"): st.fixed_dictionaries(
        {"enabled": st.booleans()}, optional={"replicas": replicas}
    ),
}


@st.composite
def layer_settings(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(sorted(LAYERS)), max_size=4, unique=True))
    result: dict[str, Any] = {}
    for layer, capability in chosen:
        result.setdefault(layer, {})[capability] = draw(LAYERS[layer, capability])
    return result


def profiles(edgy: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Changes to the example profile (absent keys keep the example's value)."""
    return st.fixed_dictionaries(
        {},
        optional={
            "slug": either(valid_slugs, *NEAR_SLUGS, edgy=edgy),
            "name": either(display_names, *BAD_DISPLAY_NAMES, edgy=edgy),
            "districts": places(edgy, edgeNodes=st.integers(-1 if edgy else 0, 1000)),
            "departments": st.one_of(st.just([]), places(edgy, quota=quotas(edgy))),
            "scale": scales,
            "layers": layer_settings(),
        },
    )


Case = tuple[dict[str, Any], dict[str, Any]]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Profile changes and an environment file: three in four valid by construction (so most
    reach the server), the others with near-valid and hostile values among them."""
    edgy = draw(st.integers(0, 3)) == 3
    return draw(profiles(edgy)), draw(environments(edgy))


def profile_data(changes: dict[str, Any]) -> dict[str, Any]:
    data = example_data()
    data["city"]["slug"] = changes.get("slug", BASE_SLUG)
    if "name" in changes:
        data["city"]["name"] = changes["name"]
    for key in ("districts", "departments", "scale"):
        if key in changes:
            data[key] = changes[key]
    for layer, capabilities in changes.get("layers", {}).items():
        data.setdefault("layers", {}).setdefault(layer, {}).update(capabilities)
    return data


# -- the API server ----------------------------------------------------------------------------


@dataclass(repr=False)
class Server:
    """The cluster, and the cluster-scoped objects this module made on it for real, by kind:
    removed at the end (namespaced ones live in the cities' namespaces)."""

    cluster: Cluster
    created: dict[str, set[str]] = field(default_factory=dict)

    def __repr__(self) -> str:
        # Hypothesis prints the test's arguments: not the cluster's environment variables.
        return f"Server({self.cluster.kubeconfig})"

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        # Not Cluster.kubectl: the documents hold any script, so the encoding is set here.
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(self.cluster.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            check=False,
            env=self.cluster.env,
            timeout=300,
        )

    def apply(self, objects: list[Object], *flags: str) -> subprocess.CompletedProcess[str]:
        # --force-conflicts: a dry run over what another field manager owns must not conflict.
        # --validate=false: kubectl's own schema check costs it 15 ms an object, four times the
        # server's work; the server still checks every field (unknown or duplicate ones come
        # back as warnings, and a warning fails the test).
        return self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--validate=false",
            f"--field-manager={MANAGER}",
            *flags,
            "-f",
            "-",
            stdin=manifests.dump(objects),
        )

    def remember(self, objects: list[Object]) -> None:
        for obj in objects:
            if "namespace" not in obj["metadata"]:
                self.created.setdefault(obj["kind"], set()).add(obj["metadata"]["name"])

    def delete(self, kind: str, names: Iterable[str], *flags: str) -> None:
        chosen = sorted(names)
        if chosen:
            self.kubectl("delete", kind, *chosen, "--ignore-not-found", *flags)


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


def controller_pods(objects: list[Object]) -> list[Object]:
    """The first pod each workload's controller would create, named and labelled as it would."""
    pods: list[Object] = []
    for obj in objects:
        kind, spec, meta = obj["kind"], obj.get("spec", {}), obj["metadata"]
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            template = spec["template"]
        elif kind == "CronJob":
            template = spec["jobTemplate"]["spec"]["template"]
        else:
            continue
        pod_meta = copy.deepcopy(template.get("metadata", {}))
        pod_spec = copy.deepcopy(template["spec"])
        labels = dict(pod_meta.get("labels", {}))
        name = meta["name"]
        if kind == "StatefulSet":
            pod_name = f"{name}-0"
            labels |= {
                "statefulset.kubernetes.io/pod-name": pod_name,
                "apps.kubernetes.io/pod-index": "0",
                "controller-revision-hash": f"{name}-7c9d8f6b5",
            }
            pod_spec["hostname"] = pod_name
            if spec.get("serviceName"):
                pod_spec["subdomain"] = spec["serviceName"]
            pod_spec["volumes"] = [
                *pod_spec.get("volumes", []),
                *(
                    {
                        "name": claim["metadata"]["name"],
                        "persistentVolumeClaim": {
                            "claimName": f"{claim['metadata']['name']}-{pod_name}"
                        },
                    }
                    for claim in spec.get("volumeClaimTemplates", [])
                ),
            ]
        elif kind in ("CronJob", "Job"):
            # CronJob names jobs by their scheduled minute (eight digits for decades to come).
            job = f"{name}-29000000" if kind == "CronJob" else name
            uid = "00000000-0000-4000-8000-000000000000"
            labels |= {
                "batch.kubernetes.io/job-name": job,
                "job-name": job,
                "batch.kubernetes.io/controller-uid": uid,
                "controller-uid": uid,
            }
            pod_name = f"{job}-parit"
        else:
            labels["pod-template-hash"] = "5d4f8c6b7d"
            pod_name = f"{name}-5d4f8c6b7d-parit"
        pod_meta |= {"name": pod_name, "namespace": meta["namespace"], "labels": labels}
        pods.append({"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec})
    return pods


def _key(obj: Object) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def _described(objects: list[Object], text: str) -> str:
    """The objects a kubectl message names, as YAML (cut), to show beside the message."""
    named = [
        o
        for o in objects
        if f'"{o["metadata"]["name"]}"' in text or f"/{o['metadata']['name']};" in text
    ]
    shown = [manifests.dump([o])[:3000] for o in named[:5]]
    return "\n".join(shown) if shown else "(no object named in the message)"


def _refused(what: str, result: subprocess.CompletedProcess[str], objects: list[Object]) -> str:
    errors = [line for line in result.stderr.splitlines() if not line.startswith("Warning:")]
    text = "\n".join(errors)
    return f"the API server refused what validate accepted ({what}):\n{text}\n\n" + _described(
        objects, text
    )


def _documents(text: str) -> list[Object]:
    """kubectl -o json prints one List, or one object per document."""
    decoder = json.JSONDecoder()
    found: list[Object] = []
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, index = decoder.raw_decode(text, index)
        found.extend(value["items"] if value.get("kind") == "List" else [value])
    return found


def _await_allow_list(server: Server, namespace: str, service_account: str) -> None:
    """Admission takes a policy into effect shortly after it is created: wait for it to refuse a
    foreign image, or a pass below would prove nothing."""
    canary: Object = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "parity-canary", "namespace": namespace},
        "spec": {
            "serviceAccountName": service_account,
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "canary",
                    "image": CANARY_IMAGE,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "runAsUser": 1000,
                    },
                }
            ],
        },
    }
    deadline = time.monotonic() + 30
    while True:
        result = server.apply([canary], "--dry-run=server")
        if ALLOW_LIST_DENIAL in result.stderr:
            return
        assert time.monotonic() < deadline, f"the allow-list never took effect: {result.stderr}"
        time.sleep(0.3)


def assert_no_warnings(result: subprocess.CompletedProcess[str]) -> None:
    """The server's warnings count as refusals: unknown fields, and values it calls invalid
    without refusing them yet (a fractional byte count)."""
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert not warnings, "the API server warned about what validate accepted:\n" + "\n".join(
        warnings
    )


def assert_kept(sent: list[Object], result: subprocess.CompletedProcess[str]) -> None:
    """The server holds every label and annotation as rendered: none changed on the way (YAML
    folding a line break, an escape read differently)."""
    stored = {_key(o): o["metadata"] for o in _documents(result.stdout)}
    for obj in sent:
        meta = stored[_key(obj)]
        for part in ("labels", "annotations"):
            kept = meta.get(part) or {}
            for key, value in (obj["metadata"].get(part) or {}).items():
                assert kept.get(key) == value, (_key(obj), part, key, value, kept.get(key))


def assert_server_accepts(server: Server, objects: list[Object]) -> None:
    real = [o for o in objects if o["kind"] in REAL_KINDS]
    server.remember(real)
    policies = [o for o in real if o["kind"] in POLICY_KINDS]
    try:
        result = server.apply(real, "-o", "json")
        assert result.returncode == 0, _refused("applied for real", result, real)
        assert_no_warnings(result)
        assert_kept(real, result)
        binding = next(o for o in policies if o["kind"] == "ValidatingAdmissionPolicyBinding")
        selected = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]
        accounts = [o for o in real if o["kind"] == "ServiceAccount"]
        account = next(a for a in accounts if a["metadata"]["namespace"] in selected["values"])
        _await_allow_list(server, account["metadata"]["namespace"], account["metadata"]["name"])

        rest = [o for o in objects if o["kind"] not in REAL_KINDS] + controller_pods(objects)
        result = server.apply(rest, "--dry-run=server", "-o", "json")
        assert result.returncode == 0, _refused("server-side dry run", result, rest)
        assert_no_warnings(result)
        assert_kept(rest, result)
    finally:
        # Another city's policy could judge pods in a namespace both cities name.
        for kind in POLICY_KINDS:
            policy_names = (o["metadata"]["name"] for o in policies if o["kind"] == kind)
            server.delete(kind, policy_names, "--wait=false")


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
