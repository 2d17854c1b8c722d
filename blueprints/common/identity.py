"""Common-capability layer (7.3), identity: Keycloak, single sign-on for the city."""

from __future__ import annotations

import json
from typing import ClassVar

from citykit.blueprints.shared import DATABASE_PASSWORD
from citykit.blueprints.shared import ReplicatedSettings

from citykit.contract import layers
from citykit.contract.component import Check
from citykit.contract.component import Component
from citykit.contract.component import Image
from citykit.contract.component import Metrics
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import SecretSpec
from citykit.contract.component import SizingRule
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import city
from citykit.objects.build import Build


def oidc_clients(build: Build) -> list[str]:
    return [p.name for p in build.plan.components if p.layer.key == "applications"]


# The realm imported at start is named after the city's slug (`values`: "realm": city.slug),
# which is CITY, so no extra variable is needed. The issuer's host is KC_HOSTNAME's (the public
# name), so only its path is judged.
KEYCLOAK_DISCOVERY = r"""
set -eu
realm="$CITY"
code=$(curl -sS --max-time 15 -o /tmp/discovery -w '%{http_code}' \
  "http://$TARGET:$PORT_HTTP/realms/$realm/.well-known/openid-configuration")
if [ "$code" != 200 ]; then
  echo "GET /realms/$realm/.well-known/openid-configuration: HTTP $code"
  exit 1
fi
issuer=$(jq -r '.issuer // "none"' /tmp/discovery 2>/dev/null) || issuer="unreadable"
if ! jq -e --arg realm "$realm" '.issuer | endswith("/realms/" + $realm)' /tmp/discovery \
    >/dev/null 2>&1; then
  echo "discovery document of realm $realm has issuer $issuer"
  exit 1
fi
echo "realm $realm discovery served, issuer $issuer"
"""


@component
class Keycloak(Component):
    name: ClassVar[str] = "keycloak"
    capability: ClassVar[str] = "identity"
    layer = layers.COMMON
    summary: ClassVar[str] = (
        "Keycloak: single sign-on for staff and citizens, one OIDC client per application."
    )
    docs: ClassVar[str] = (
        "Keycloak with its database in the relational store. A realm named after the city is "
        "imported at start; it has one OpenID Connect client per 7.4 application in the plan. "
        "The admin password is generated at deploy time."
    )
    requires = ("relational-db",)
    images = {"main": Image("quay.io/keycloak/keycloak", "26.1.4")}
    Settings = ReplicatedSettings
    sizing = (
        SizingRule(
            "replicas",
            2 + city.population / 1_000_000,
            why="a pair for availability, more as the city grows",
            scales_with="replicas",
            maximum=16,
        ),
    )
    ports = (Port("http", 8080), Port("management", 9000))
    resources = Resources(cpu_millis=500, memory_mi=1024)
    secrets = (SecretSpec("admin", ("password",)), DATABASE_PASSWORD)
    metrics = Metrics("management")
    checks = (Check("serves the city realm's OIDC discovery document", KEYCLOAK_DISCOVERY),)
    workload = Workload(
        Probe("management", "/health/ready"),
        liveness=Probe("management", "/health/live"),
        replicas="replicas",
        args=("start", "--import-realm", "--optimized"),
        config_path="/opt/keycloak/data/import",
        writable=("/tmp", "/opt/keycloak/data/tmp"),
        initial_delay=30,
    )

    def values(self, build: Build) -> TemplateValues:
        city = build.plan.profile.city
        realm = {
            "realm": city.slug,
            "displayName": city.name,
            "enabled": True,
            "sslRequired": "external",
            "clients": [
                {
                    "clientId": name,
                    "protocol": "openid-connect",
                    "publicClient": False,
                    "standardFlowEnabled": True,
                    "redirectUris": [f"https://{build.plan.environment.domain}/{name}/*"],
                }
                for name in oidc_clients(build)
            ],
        }
        db = build.peer("relational-db")
        return TemplateValues(
            config={"realm.json": json.dumps(realm, sort_keys=True, ensure_ascii=False)},
            env={
                "KC_DB": "postgres",  # Keycloak's name for the PostgreSQL dialect
                "KC_DB_URL": db.jdbc_url(),
                "KC_DB_USERNAME": db.database.user,
                "KC_HEALTH_ENABLED": "true",
                "KC_METRICS_ENABLED": "true",
                "KC_HTTP_ENABLED": "true",
                "KC_HOSTNAME": f"sso.{build.plan.environment.domain}",
                "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
            },
            secret_env=(
                self.secret_env("KC_BOOTSTRAP_ADMIN_PASSWORD", "admin", "password"),
                self.secret_env("KC_DB_PASSWORD", "db", "password"),
            ),
        )
