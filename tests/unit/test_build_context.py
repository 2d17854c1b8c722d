"""The build context a component reads its peers from (citykit/contract/build.py): lookups that
cannot succeed fail at once, naming both components, and the shared template's values are typed."""

from __future__ import annotations

import pytest

from citykit import compiler
from citykit.contract.build import BuildError
from citykit.contract.template_values import TemplateValues
from citykit.objects.build import build_of
from tests.conftest import EXAMPLE


@pytest.fixture(scope="module")
def plan():
    return compiler.plan(EXAMPLE, "dev")


def test_a_peer_is_read_from_its_own_declarations(plan) -> None:
    postgis = build_of(plan, "keycloak").peer("relational-db")
    assert postgis.name == "postgis"
    assert postgis.host == f"postgis.{postgis.namespace}.svc"
    assert postgis.port() == postgis.port(postgis.database.port)
    assert postgis.jdbc_url().startswith(f"jdbc:postgresql://{postgis.host}:")
    assert postgis.jdbc_url().endswith(f"/{postgis.database.name}")


def test_a_capability_the_component_does_not_declare_is_refused(plan) -> None:
    with pytest.raises(BuildError) as refused:
        build_of(plan, "keycloak").peer("stream-processing")
    assert "keycloak" in refused.value.message and "stream-processing" in refused.value.message


def test_a_port_or_secret_the_peer_does_not_declare_is_refused(plan) -> None:
    postgis = build_of(plan, "keycloak").peer("relational-db")
    with pytest.raises(BuildError) as port:
        postgis.port("http")
    assert "keycloak reads port 'http' of postgis (relational-db)" in port.value.message
    with pytest.raises(BuildError) as secret:
        postgis.secret("no-such-secret")
    assert "its declared Secrets:" in secret.value.message


def test_the_shared_template_values_are_typed() -> None:
    with pytest.raises(TypeError):
        TemplateValues(envv={"A": "1"})  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="would hide the shared template's"):
        TemplateValues(own={"env": {}})
    assert TemplateValues(env={"A": "1"}).for_templates()["env"] == {"A": "1"}
