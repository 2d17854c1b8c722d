"""The inputs of the parity test (tests/e2e/test_parity.py): Hypothesis strategies for the
values that flow into object names, labels, annotations and specs, from valid through
near-valid to hostile, and the example profile with a case's changes applied."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from citykit.input import names
from citykit.input.environment import SHIPPED
from tests.conftest import example_data

# Cities made here never take the example's slug: the deploy tests own `yuhang` on this cluster.
BASE_SLUG = "parity"

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
