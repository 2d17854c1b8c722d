"""Data layer (7.2), data catalog: Apache Gravitino over the lake, the databases and the streams."""

from __future__ import annotations

import json
from typing import Any
from typing import ClassVar

from citykit.blueprints.shared import DATABASE_PASSWORD
from pydantic import Field

from citykit.contract import layers
from citykit.contract.component import Component
from citykit.contract.component import ComponentSettings
from citykit.contract.component import Image
from citykit.contract.component import Metrics
from citykit.contract.component import PodSecurityException
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import SizingRule
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import city
from citykit.objects.build import Build


class CatalogSettings(ComponentSettings):
    replicas: int | None = Field(
        None, ge=1, le=16, description="Catalog servers (default: derived)."
    )


@component
class Gravitino(Component):
    name: ClassVar[str] = "gravitino"
    capability: ClassVar[str] = "data-catalog"
    layer = layers.DATA
    summary: ClassVar[str] = (
        "Apache Gravitino: the city data catalog over the lake, the databases and the event "
        "streams."
    )
    docs: ClassVar[str] = (
        "Apache Gravitino as the unified metadata catalog (数据资源目录): one metalake named "
        "after the city whose catalogs describe the relational store, the data lake and, when "
        "the broker is Kafka, the event streams. Its own metadata (entity store) lives in the "
        "relational store, so the servers are stateless and share one password with the "
        "database. The catalogs to register are rendered from the plan into `catalogs.json` "
        "(endpoints only, never credentials). Servers are derived from population."
    )
    requires = ("relational-db",)
    uses = ("data-lake", "message-broker")
    images = {"main": Image("docker.io/apache/gravitino", "1.3.0")}
    Settings = CatalogSettings
    sizing = (
        SizingRule(
            "replicas",
            2 + city.population / 2_000_000,
            why="a pair for availability, more as the city grows",
            scales_with="replicas",
            maximum=16,
        ),
    )
    ports = (Port("http", 8090),)
    resources = Resources(cpu_millis=500, memory_mi=1024)
    secrets = (DATABASE_PASSWORD,)
    metrics = Metrics("http", "/prometheus/metrics")
    exceptions = (
        PodSecurityException(
            "readOnlyRootFilesystem",
            "the image's entrypoint rewrites conf/gravitino.conf from the environment and links "
            "the bundled JDBC drivers into libs/ at start",
        ),
    )
    workload = Workload(
        Probe("http", "/api/version"),
        replicas="replicas",
        # The image's own uid; its files belong to group 0 (built for arbitrary uids).
        run_as=1000,
        run_as_group=0,
        config_path="/etc/gravitino/city",
        initial_delay=30,
    )

    def values(self, build: Build) -> TemplateValues:
        plan = build.plan
        db = build.peer("relational-db")
        jdbc, database = db.jdbc_url(), db.database
        catalogs: list[dict[str, Any]] = [
            {
                "name": "city-db",
                "type": "relational",
                "provider": "jdbc-postgresql",
                "properties": {
                    "jdbc-url": jdbc,
                    "jdbc-driver": database.driver,
                    "jdbc-database": database.name,
                    "jdbc-user": database.user,
                },
            }
        ]
        lake = build.optional_peer("data-lake")
        if lake is not None:
            catalogs.append(
                {
                    "name": "city-lake",
                    "type": "fileset",
                    "provider": "fileset",
                    "properties": {
                        "filesystem-providers": "s3",
                        "location": f"s3a://{plan.slug}-lake/",
                        "s3-endpoint": lake.url(),
                    },
                }
            )
        # Gravitino catalogs Kafka topics only: a broker that speaks the Kafka protocol (declares
        # a `kafka` port) gets a messaging catalog; NATS or RabbitMQ have no Gravitino provider.
        broker = build.optional_peer("message-broker")
        if broker is not None and "kafka" in broker.ports:
            catalogs.append(
                {
                    "name": "city-streams",
                    "type": "messaging",
                    "provider": "kafka",
                    "properties": {"bootstrap.servers": broker.address("kafka")},
                }
            )
        metalake = {"metalake": plan.slug, "comment": plan.profile.city.name, "catalogs": catalogs}
        return TemplateValues(
            config={
                "catalogs.json": json.dumps(metalake, sort_keys=True, indent=1, ensure_ascii=False)
            },
            env={
                "GRAVITINO_ENTITY_STORE": "relational",
                "GRAVITINO_ENTITY_STORE_RELATIONAL": "JDBCBackend",
                "GRAVITINO_ENTITY_STORE_RELATIONAL_JDBC_URL": jdbc,
                "GRAVITINO_ENTITY_STORE_RELATIONAL_JDBC_DRIVER": database.driver,
                "GRAVITINO_ENTITY_STORE_RELATIONAL_JDBC_USER": database.user,
                "CITY_METALAKE": plan.slug,
            },
            secret_env=(
                self.secret_env(
                    "GRAVITINO_ENTITY_STORE_RELATIONAL_JDBC_PASSWORD", "db", "password"
                ),
            ),
        )
