"""Application layer (7.4): 一网通办, 一网统管 and 一网协同 application templates, each wired to the
gateway (a route), identity (an OIDC client), the broker (its topics) and the stores it uses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from typing import ClassVar

from citykit.blueprints.shared import DATABASE_PASSWORD
from pydantic import Field

from citykit.contract import layers
from citykit.contract.component import Check
from citykit.contract.component import Component
from citykit.contract.component import ComponentSettings
from citykit.contract.component import Image
from citykit.contract.component import LocalImage
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
from citykit.objects.build import build_of

PORTAL_IMAGE = Image("docker.io/nginxinc/nginx-unprivileged", "1.27.4-alpine")
# Debian's nginx (1.22) set up as nginx-unprivileged is: port 8080, pid and temporary files in
# /tmp, logs to the container's stdout/stderr, pages from /usr/share/nginx/html, upstream's CMD
# and STOPSIGNAL. It writes only to /tmp and /var/cache/nginx (the workload's emptyDirs), so it
# runs as any uid: 10001 rather than nginx-unprivileged's 101, which a host may give to a user.
PORTAL_NGINX_CONF = """worker_processes auto;
error_log /var/log/nginx/error.log notice;
pid /tmp/nginx.pid;
events {
    worker_connections 1024;
}
http {
    client_body_temp_path /tmp/client_temp;
    proxy_temp_path /tmp/proxy_temp_path;
    fastcgi_temp_path /tmp/fastcgi_temp;
    uwsgi_temp_path /tmp/uwsgi_temp;
    scgi_temp_path /tmp/scgi_temp;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /var/log/nginx/access.log;
    sendfile on;
    keepalive_timeout 65;
    include /etc/nginx/conf.d/*.conf;
}
"""
PORTAL_SITE_CONF = """server {
    listen 8080;
    server_name localhost;
    location / {
        root /usr/share/nginx/html;
        index index.html index.htm;
    }
    error_page 500 502 503 504 /50x.html;
    location = /50x.html {
        root /usr/share/nginx/html;
    }
}
"""
PORTAL_LOCAL = LocalImage(
    version="1.22.1",
    source="debian:bookworm nginx",
    debian=("nginx",),
    script=f"""
rm -f /etc/nginx/sites-enabled/default
cat > /etc/nginx/nginx.conf <<'EOF'
{PORTAL_NGINX_CONF}EOF
cat > /etc/nginx/conf.d/default.conf <<'EOF'
{PORTAL_SITE_CONF}EOF
cp /usr/share/nginx/html/index.html /usr/share/nginx/html/50x.html
mkdir -p /var/log/nginx /var/cache/nginx
ln -sf /dev/stdout /var/log/nginx/access.log
ln -sf /dev/stderr /var/log/nginx/error.log
chown 10001:10001 /var/cache/nginx
""",
    user=10001,
    user_name="nginx",
    cmd=("nginx", "-g", "daemon off;"),
    stop_signal="SIGQUIT",
    check="nginx -v 2>&1 | grep -q 'nginx/1.22'\nnginx -t -q",
)


class AppSettings(ComponentSettings):
    replicas: int | None = Field(None, ge=1, le=64, description="Replicas (default: derived).")


# The portal's site: served at `/` and under its gateway route `/<application>/`, since the
# gateways pass the full path on (citykit/plan/routes.py). Upstream's nginx-unprivileged image
# and the local one read it from conf.d, which the workload mounts from a ConfigMap.
PORTAL_SITE = """server {{
    listen 8080;
    server_name localhost;
    root /usr/share/nginx/html;
    index index.html index.htm;
    location / {{
    }}
    location {route} {{
        alias /usr/share/nginx/html/;
    }}
    error_page 500 502 503 504 /50x.html;
}}
"""
PORTAL_UNDER_ROUTE = r"""
set -eu
code=$(curl -sS --max-time 10 -o /tmp/page -w '%{http_code}' "http://$TARGET:$PORT_HTTP$ROUTE")
echo "$ROUTE: HTTP $code, $(wc -c < /tmp/page) bytes"
[ "$code" = 200 ]
"""
PORTAL_SERVES = """
set -eu
code=$(curl -sS --max-time 10 -o /tmp/page -w '%{http_code}' "http://$TARGET:$PORT_HTTP/")
echo "HTTP $code, $(wc -c < /tmp/page) bytes"
[ "$code" = 200 ]
"""
# The application's own copy of the database password (Secret `<app>-db`, the same values as
# the database's), used from the application's namespace: what the application itself does.
# The database and its user are the store's (`check_env`: RELATIONAL_DB_NAME and _USER).
DATABASE_WITH_APP_CREDENTIALS = """
set -eu
host=${RELATIONAL_DB_URL%:*} port=${RELATIONAL_DB_URL##*:}
database="dbname=$RELATIONAL_DB_NAME user=$RELATIONAL_DB_USER"
version=$(psql "host=$host port=$port $database connect_timeout=10" \
  -Atc 'SELECT postgis_full_version()')
echo "$version" | grep -q 'POSTGIS="' && echo "$RELATIONAL_DB_URL: $(echo "$version" | cut -c1-60)"
"""


DATABASE_CHECK = Check(
    "its database answers with its own copy of the credentials",
    DATABASE_WITH_APP_CREDENTIALS,
    (("PGPASSWORD", "db", "password"),),
)


OIDC_CLIENT = SecretSpec("oidc-client", ("secret",))  # the application's client of the realm


class Application(Component):
    """An application template: a web front end behind the gateway, wired by environment to the
    capabilities it requires. `topics` are the broker topics it owns."""

    layer = layers.APPLICATIONS
    images = {"main": PORTAL_IMAGE}
    local_images = {"main": PORTAL_LOCAL}
    Settings = AppSettings
    ports = (Port("http", 8080, exposed_to="gateway"),)
    resources = Resources(cpu_millis=250, memory_mi=256)
    secrets: ClassVar[tuple[SecretSpec, ...]] = (OIDC_CLIENT,)
    topics: ClassVar[tuple[str, ...]] = ()
    workload = Workload(
        Probe("http", "/"),
        replicas="replicas",
        # Upstream's image is made for arbitrary uids (its files belong to group 0, readable by
        # all) and writes only to these emptyDirs: the default uid, not the image's 101.
        writable=("/tmp", "/var/cache/nginx"),
        config_path="/etc/nginx/conf.d",
    )
    checks: ClassVar[tuple[Check, ...]] = (
        Check("serves its portal", PORTAL_SERVES),
        Check("serves its portal under its gateway route", PORTAL_UNDER_ROUTE),
    )

    def check_env(self, plan: Any) -> Mapping[str, str]:
        build = build_of(plan, self.name)
        env = {**_peer_urls(build, self.requires), "ROUTE": f"/{self.name}/"}
        if "relational-db" in self.requires:
            database = build.peer("relational-db").database
            env |= {"RELATIONAL_DB_NAME": database.name, "RELATIONAL_DB_USER": database.user}
        return env

    def values(self, build: Build) -> TemplateValues:
        plan, me = build.plan, build.component
        env: dict[str, str] = {
            "CITY_NAME": plan.profile.city.name,
            "CITY_ADMIN_CODE": plan.profile.city.admin_code,
            "OIDC_ISSUER": f"https://sso.{plan.environment.domain}/realms/{plan.slug}",
            "OIDC_CLIENT_ID": me.name,
            "PUBLIC_URL": f"https://{plan.environment.domain}/{me.name}/",
            "BROKER_TOPICS": ",".join(f"{plan.slug}.{t}" for t in self.topics),
        }
        env.update(_peer_urls(build, self.requires))
        secret_env = [self.secret_env("OIDC_CLIENT_SECRET", "oidc-client", "secret")]
        if "relational-db" in self.requires:
            secret_env.append(self.secret_env("DB_PASSWORD", "db", "password"))
        manifest = {"application": me.name, "topics": sorted(env["BROKER_TOPICS"].split(","))}
        return TemplateValues(
            env=env,
            secret_env=tuple(secret_env),
            config={"default.conf": PORTAL_SITE.format(route=f"/{me.name}/")},
            # Read by no template: the topics are in BROKER_TOPICS.
            own={
                "topics": [f"{plan.slug}.{t}" for t in self.topics],
                "manifest": json.dumps(manifest, ensure_ascii=False, sort_keys=True),
            },
        )


def _peer_urls(build: Build, capabilities: tuple[str, ...]) -> dict[str, str]:
    """`<CAPABILITY>_URL`: host:port of the main (first) port of each required peer."""
    return {
        f"{capability.upper().replace('-', '_')}_URL": build.peer(capability).address()
        for capability in sorted(capabilities)
    }


def _sizing(per: int) -> tuple[SizingRule, ...]:
    return (
        SizingRule(
            "replicas",
            2 + city.population / per,
            why="a pair for availability, more as the city grows",
            scales_with="replicas",
            maximum=64,
        ),
    )


@component
class OneNetworkServices(Application):
    name: ClassVar[str] = "one-network-services"
    capability: ClassVar[str] = "one-network-services"
    summary: ClassVar[str] = "一网通办: the government-services portal for citizens and businesses."
    docs: ClassVar[str] = (
        "The 一网通办 portal template: citizens sign in through the city realm, applications are "
        "stored in the relational store, status changes are published on the broker. The image "
        "is a static web server slot (nginx-unprivileged) that the city replaces with its portal "
        "build; all wiring (route, OIDC client, topics, database) is real."
    )
    requires = ("api-gateway", "identity", "relational-db", "message-broker")
    secrets = (OIDC_CLIENT, DATABASE_PASSWORD)
    topics = ("service-applications", "service-status")
    sizing = _sizing(500_000)
    checks = (*Application.checks, DATABASE_CHECK)


@component
class OneNetworkOperations(Application):
    name: ClassVar[str] = "one-network-operations"
    capability: ClassVar[str] = "one-network-operations"
    summary: ClassVar[str] = (
        "一网统管: the city operations centre (IOC) over twins, maps and telemetry."
    )
    docs: ClassVar[str] = (
        "The 一网统管 IOC template: reads telemetry from the time-series store, maps from GIS, "
        "twin state from the digital twin, and handles city events from the broker."
    )
    requires = ("api-gateway", "identity", "message-broker", "timeseries-db", "gis", "digital-twin")
    topics = ("city-events", "incidents")
    sizing = _sizing(1_000_000)


@component
class OneNetworkCollaboration(Application):
    name: ClassVar[str] = "one-network-collaboration"
    capability: ClassVar[str] = "one-network-collaboration"
    summary: ClassVar[str] = (
        "一网协同: cross-department collaboration and workflow for government staff."
    )
    docs: ClassVar[str] = (
        "The 一网协同 template: staff sign in through the city realm; workflows run on the event "
        "hub; records are stored in the relational store."
    )
    requires = ("api-gateway", "identity", "relational-db", "event-hub")
    secrets = (OIDC_CLIENT, DATABASE_PASSWORD)
    topics = ("tasks",)
    sizing = _sizing(1_000_000)
    checks = (*Application.checks, DATABASE_CHECK)
