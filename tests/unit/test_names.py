"""The name and address rules (citykit/names.py), and the names citykit builds from profile,
environment and catalog values: all within what Kubernetes and image registries accept."""

from __future__ import annotations

import pytest

from citykit.catalog import load_catalog
from citykit.contract import layers
from citykit.conventions import tenant_namespace
from citykit.input import names
from citykit.input import urls
from citykit.plan.planned import namespace_for

LONGEST_SLUG = "a" * names.SLUG_MAX


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (
            names.domain_problem,
            ["city.local", "city.example", "a-b.c0", "localhost", "x" * 63 + ".example"],
            [
                "City.example",
                "a..b",
                ".a",
                "a.",
                "-a.b",
                "a-.b",
                "1.2.3.4",
                "a_b.c",
                "a b",
                "x" * 64 + ".example",
                ("a" * 62 + ".") * 4,
                "ü.example",
                "a\nkind: Secret",
            ],
        ),
        (
            names.subdomain_problem,
            ["citykit-local", "fast.ssd", "gp3", "a" * 253],
            ["Fast", "fast_ssd", "a" * 254, "-a", "a..b", "a\n", ""],
        ),
        (
            names.registry_problem,
            [
                "registry.city.example/mirror",
                "localhost:5000",
                "reg.io:443/a/b__c/d-e",
                "[::1]:5000/x",
                "Registry.Example",
            ],
            [
                "mirror",
                "reg.io/",
                "reg.io//x",
                "reg.io/UP",
                "reg.io:0",
                "reg.io:99999",
                "reg.io:x",
                "https://reg.io",
                "[::g]/x",
                "reg.io/a b",
                "r." + "a" * 130,
                "",
            ],
        ),
        (
            names.email_problem,
            ["platform@city.example", "o'brien+ops@x.y", "A.B@Example.COM"],
            [
                "platform",
                "a@b",
                "@b.c",
                "a@.c",
                "a..b@c.d",
                "a b@c.d",
                "a@b.c\nx",
                "x@1.2.3.4",
                "a@" + "b" * 64 + ".c",
            ],
        ),
        (
            names.context_problem,
            [
                "city-prod",
                "kind-citykit",
                "gke_p_z_c",
                "arn:aws:eks:eu-1:1:cluster/x",
                "admin@cluster",
            ],
            ["-x", "a b", "a\nb", "", "ctx;id", "x" * 254],
        ),
    ],
)
def test_checks_accept_and_refuse(check, good: list[str], bad: list[str]) -> None:
    for value in good:
        assert check(value) is None, value
    for value in bad:
        fault = check(value)
        assert fault, value
        assert "\n" not in fault and len(fault) < 300  # one readable line, even for hostile input


@pytest.mark.parametrize(
    ("schemes", "good", "bad"),
    [
        (
            ("https",),
            ["https://acme.city.example/directory", "https://10.0.0.1:8443/dir", "https://[::1]/x"],
            [
                "http://acme.example/dir",
                "https://",
                "https://u:p@x.example/",
                "https://x/#f",
                "https://x.example:99999/",
                "https://[::1/x",
                "https://x y/",
                "acme.example",
                "file:///x",
                "https://bad_host/x",
                "https://x.example/\n",
            ],
        ),
        (
            ("file", "s3", "azblob", "gs", "https"),
            [
                "file:///var/lib/state",
                "s3://my-bucket/prefix?region=eu-west-1",
                "gs://bucket",
                "azblob://container",
                "https://api.pulumi.com",
            ],
            [
                "file://relative/dir",
                "file://~/x",
                "file:///x?y",
                "s3://",
                "s3://UP",
                "gs://b",
                "ftp://x.example",
                "http://api.pulumi.com",
                "javascript:alert(1)",
            ],
        ),
        (
            ("awskms", "azurekeyvault", "gcpkms", "hashivault"),
            [
                "awskms://alias/citykit?region=eu-west-1",
                "awskms:///arn:aws:kms:x:1:key/k",
                "azurekeyvault://city.vault.azure.net/keys/k",
                "gcpkms://projects/p/locations/l",
                "hashivault://citykit",
            ],
            [
                "awskms://",
                "hashivault:///",
                "azurekeyvault://-bad-/keys/k",
                "passphrase",
                "vault://x",
                "awskms://a#b",
            ],
        ),
    ],
)
def test_urls_have_the_schemes_and_shapes_their_consumer_reads(
    schemes: tuple[str, ...], good: list[str], bad: list[str]
) -> None:
    for value in good:
        assert urls.url_problem(value, schemes) is None, value
    for value in bad:
        assert urls.url_problem(value, schemes), value


def test_long_values_are_cut_in_messages() -> None:
    fault = names.domain_problem("x" * 1_000_000)
    assert fault is not None and len(fault) < 200


def test_names_built_from_the_longest_slugs_are_dns_labels() -> None:
    for layer in layers.ALL:
        assert names.label_problem(namespace_for(LONGEST_SLUG, layer)) is None
    assert names.label_problem(tenant_namespace(LONGEST_SLUG, LONGEST_SLUG)) is None
    # Stack names `<city>-<env>` (Pulumi allows 100) and the public TLS Secret.
    assert len(f"{LONGEST_SLUG}-{LONGEST_SLUG}") <= 100
    assert names.label_problem(f"{LONGEST_SLUG}-public-tls") is None


def test_catalog_names_and_images_are_valid_with_the_longest_mirror() -> None:
    mirror = "r" * 60 + "." + "example" + "/" + "m" * (names.REGISTRY_MAX - 69)
    assert len(mirror) == names.REGISTRY_MAX and names.registry_problem(mirror) is None
    for component in load_catalog().components():
        assert names.label_problem(component.name) is None
        for secret in component.secrets:
            assert names.label_problem(f"{component.name}-{secret.name}") is None
        for image in component.images.values():
            assert names.image_reference_problem(image.ref(None)) is None, image
            assert names.image_reference_problem(image.ref(mirror)) is None, image
        for key, recipe in component.local_images.items():
            assert names.image_reference_problem(recipe.ref(component.name, key)) is None


def test_city_slugs_that_make_reserved_names_are_refused() -> None:
    # The API server refuses PriorityClasses named `system-…` other than its own two.
    for slug in ("system", "system-a", "system-"):
        fault = names.city_slug_problem(slug)
        assert fault is not None and f"{slug}-critical" in fault
    for slug in ("systems", "city-system", "sys", "yuhang"):
        assert names.city_slug_problem(slug) is None
