"""Common-capability layer (7.3), message broker: NATS with JetStream, for small cities."""

from __future__ import annotations

from typing import ClassVar

from citykit.blueprints.shared import MessageBrokerSettings

from citykit.contract import layers
from citykit.contract.component import Backup
from citykit.contract.component import Component
from citykit.contract.component import Image
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import SizingRule
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import GiB
from citykit.contract.sizing import Num
from citykit.contract.sizing import city
from citykit.contract.sizing import msg_per_s

# The ports NATS declares, which its arguments and the backup name too.
CLIENT_PORT = 4222
MONITOR_PORT = 8222


@component
class Nats(Component):
    name: ClassVar[str] = "nats"
    capability: ClassVar[str] = "message-broker"
    layer = layers.COMMON
    default: ClassVar[bool] = False
    summary: ClassVar[str] = "NATS with JetStream: a light event broker for small cities."
    docs: ClassVar[str] = (
        "NATS JetStream for cities whose message rate does not justify Kafka: one small "
        "StatefulSet, persistent streams, the same topic names."
    )
    images = {"main": Image("docker.io/library/nats", "2.10.26-alpine")}
    Settings = MessageBrokerSettings
    sizing = (
        SizingRule(
            "replicas",
            Num(3),
            why="a JetStream quorum",
            scales_with="replicas",
            maximum=5,
        ),
        SizingRule(
            "partitions",
            Num(1),
            why="streams are not partitioned; kept for profile compatibility",
        ),
        SizingRule(
            "storage_gi",
            GiB(10) + GiB(1) * city.peak_messages_per_second / msg_per_s(1_000),
            scales_with="size",
            unit="GiB",
        ),
    )
    ports = (Port("client", CLIENT_PORT), Port("cluster", 6222), Port("monitor", MONITOR_PORT))
    resources = Resources(cpu_millis=250, memory_mi=512)
    stateful: ClassVar[bool] = True
    quorum: ClassVar[bool] = True
    backup = Backup(
        Image("docker.io/natsio/nats-box", "0.17.0"),
        f'nats --server "nats://$TARGET:{CLIENT_PORT}" account backup /backup/latest --force',
    )
    workload = Workload(
        Probe("monitor", "/healthz"),
        kind="StatefulSet",
        replicas="replicas",
        storage="storage_gi",
        data_path="/data",
        args=("--jetstream", "--store_dir", "/data", "--http_port", str(MONITOR_PORT)),
    )
