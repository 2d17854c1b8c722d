"""Common-capability layer (7.3), message broker: Apache Kafka in KRaft mode, the default."""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated
from typing import ClassVar

from citykit.blueprints.shared import MessageBrokerSettings
from pydantic import AfterValidator
from pydantic import Field
from pydantic_core import PydanticCustomError

from citykit.contract import layers
from citykit.contract.component import Backup
from citykit.contract.component import Check
from citykit.contract.component import Component
from citykit.contract.component import Image
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import Retention
from citykit.contract.component import SizingRule
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import GiB
from citykit.contract.sizing import KiB
from citykit.contract.sizing import choose
from citykit.contract.sizing import city
from citykit.contract.sizing import days
from citykit.contract.sizing import figure
from citykit.contract.sizing import max_of
from citykit.contract.sizing import msg_per_s
from citykit.conventions import headless_host
from citykit.conventions import pod_host
from citykit.objects.build import Build


def _odd(value: int | None) -> int | None:
    if value is not None and value % 2 == 0:
        raise PydanticCustomError(
            "invalid",
            "{message}",
            {
                "message": f"{value} controller voters: a KRaft quorum needs an odd number",
                "hint": "1, 3, 5, 7 or 9; an even quorum survives no more failures than one "
                "voter fewer",
            },
        )
    return value


class KafkaSettings(MessageBrokerSettings):
    controllers: Annotated[int | None, AfterValidator(_odd)] = Field(
        None,
        ge=1,
        le=9,
        description="KRaft controller voters, an odd number, at most the brokers: the first "
        "brokers are also controllers (default: derived).",
    )


# Kafka listens in plain text without authentication (KAFKA_LISTENERS, no SASL), so the probe
# bootstraps from the Service like any client of the city. The marker is produced with a fixed
# key (one partition) to topic `citykit-verify` (created on first use, as the brokers allow),
# then every partition is read from the beginning to its end. Success is judged by what is
# consumed, not by kcat's exit status.
KAFKA_ROUND_TRIP = r"""
set -eu
broker="$TARGET:$PORT_KAFKA"
topic=citykit-verify
printf '%s\n' "$RUN" > /tmp/message
timeout 30 kcat -P -b "$broker" -t "$topic" -k citykit-verify -X message.timeout.ms=20000 \
  < /tmp/message > /tmp/produce.log 2>&1 || echo "kcat -P exited $?" >> /tmp/produce.log
attempt=0
while :; do
  attempt=$((attempt + 1))
  timeout 15 kcat -C -b "$broker" -t "$topic" -o beginning -e -q -f '%s\n' \
    > /tmp/consumed 2>/tmp/consume.log || true
  if grep -qxF "$RUN" /tmp/consumed; then
    echo "produced and consumed $RUN on topic $topic ($attempt read(s))"
    exit 0
  fi
  [ "$attempt" -ge 3 ] && break
  sleep 2
done
echo "$RUN not consumed from $topic: $(tail -n 2 /tmp/produce.log /tmp/consume.log \
  | grep -v '^==>' | tr '\n' ' ' | head -c 240)"
exit 1
"""


# The ports Kafka declares, which its start script and the backup name too.
KAFKA_PORT = 9092
CONTROLLER_PORT = 9093

# Each broker's identity comes from its pod's name (`kafka-<ordinal>`): its node id, the name it
# advertises to clients and whether it is one of the first CONTROLLERS ordinals, which are also
# the KRaft controller voters. The rest are brokers only, so they do not listen on the
# controller port (a broker that names a CONTROLLER listener would be refused without the
# `controller` role). The image's start script then turns the KAFKA_* variables into
# server.properties (and fills what is unset from its own defaults, node id 1 among them, so
# every variable that differs per node is set here); CITYKIT_* variables are not Kafka's.
KAFKA_START = rf"""
set -eu
host=$(hostname)
id=${{host##*-}}
export KAFKA_NODE_ID="$id"
export KAFKA_ADVERTISED_LISTENERS="PLAINTEXT://$host.$CITYKIT_PEERS:{KAFKA_PORT}"
if [ "$id" -lt "$CITYKIT_CONTROLLERS" ]; then
  export KAFKA_PROCESS_ROLES=broker,controller
  export KAFKA_LISTENERS=PLAINTEXT://:{KAFKA_PORT},CONTROLLER://:{CONTROLLER_PORT}
else
  export KAFKA_PROCESS_ROLES=broker
  export KAFKA_LISTENERS=PLAINTEXT://:{KAFKA_PORT}
fi
exec /etc/kafka/docker/run
"""


def kafka_cluster_id(slug: str) -> str:
    """The KRaft cluster id every node formats its storage with: a base64url UUID (22
    characters, as `kafka-storage.sh random-uuid` prints), fixed per city so that renders are
    deterministic and a node that restarts joins the cluster it formatted for."""
    digest = hashlib.sha256(f"citykit/{slug}/kafka".encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@component
class Kafka(Component):
    name: ClassVar[str] = "kafka"
    capability: ClassVar[str] = "message-broker"
    layer = layers.COMMON
    summary: ClassVar[str] = "Apache Kafka (KRaft, no ZooKeeper): the city event backbone."
    docs: ClassVar[str] = (
        "Kafka in KRaft mode. The controller quorum is a separate, odd figure (`controllers`): "
        "the first brokers of the StatefulSet (`kafka-0` …) are also its voters, the others "
        "are brokers only, so a large cluster keeps a small quorum that every metadata write "
        "waits for. A one- or two-broker city runs a single combined node as the voter. "
        "Partitions per city topic are derived from the peak message rate (about 1,000 msg/s "
        "per partition), brokers from partitions and message rate. Topics used by the "
        "applications are listed in `x.topics` and created by the applications' own start-up."
    )
    images = {"main": Image("docker.io/apache/kafka", "3.9.0")}
    Settings = KafkaSettings
    sizing = (
        SizingRule(
            "replicas",
            3 + city.peak_messages_per_second / msg_per_s(50_000),
            why="a quorum, then brokers for throughput",
            scales_with="replicas",
            maximum=64,
        ),
        SizingRule(
            "controllers",
            choose(figure("replicas") < 3, 1, choose(figure("replicas") < 10, 3, 5)),
            why="an odd KRaft quorum among the first brokers: a single voter until there are "
            "brokers for a quorum, then three, which survive a loss, and five in a large "
            "cluster, which survive a drain and a failure at once; no more, as every voter "
            "acknowledges each metadata write",
            not_above="replicas",
        ),
        SizingRule(
            "partitions",
            max_of(6, city.peak_messages_per_second / msg_per_s(1_000)),
            maximum=10_000,
        ),
        SizingRule(
            "storage_gi",
            city.peak_messages_per_second * days(7) * KiB(1) * 3 / figure("replicas") + GiB(20),
            why="the retention window of peak traffic, replicated, shared by the brokers",
            scales_with="size",
            unit="GiB",
        ),
    )
    ports = (Port("kafka", KAFKA_PORT), Port("controller", CONTROLLER_PORT))
    resources = Resources(cpu_millis=1000, memory_mi=2048)
    stateful: ClassVar[bool] = True
    quorum: ClassVar[bool] = True
    # Messages are replicated three ways; the backup keeps the topic layout and configuration
    # needed to rebuild the cluster (message data itself is replayed from the sources).
    backup = Backup(
        Image("docker.io/apache/kafka", "3.9.0"),
        f'/opt/kafka/bin/kafka-topics.sh --bootstrap-server "$TARGET:{KAFKA_PORT}" --describe '
        "> /backup/topics-$(date +%Y%m%dT%H%M).txt",
        keep=Retention("topics-*.txt", 14),
    )
    checks = (Check("a message is carried end to end", KAFKA_ROUND_TRIP, timeout=150),)
    workload = Workload(
        Probe("kafka"),
        kind="StatefulSet",
        replicas="replicas",
        storage="storage_gi",
        data_path="/var/lib/kafka/data",
        command=("/bin/sh", "-c", KAFKA_START),
        writable=("/tmp", "/opt/kafka/config", "/opt/kafka/logs"),
        initial_delay=20,
    )

    def values(self, build: Build) -> TemplateValues:
        me = build.component
        replicas = me.size("replicas")
        peers = headless_host(me.name, me.namespace)
        voters = ",".join(
            f"{i}@{pod_host(me.name, i, me.namespace)}:{self.port('controller')}"
            for i in range(me.size("controllers"))
        )
        copies = str(min(3, replicas))
        return TemplateValues(
            env={
                "CITYKIT_CONTROLLERS": str(me.size("controllers")),
                "CITYKIT_PEERS": peers,
                "CLUSTER_ID": kafka_cluster_id(build.plan.slug),
                "KAFKA_CONTROLLER_QUORUM_VOTERS": voters,
                "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
                "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
                "KAFKA_NUM_PARTITIONS": str(me.size("partitions")),
                "KAFKA_DEFAULT_REPLICATION_FACTOR": copies,
                # The image's defaults (one copy) would leave consumer offsets and transactions
                # on a single broker.
                "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": copies,
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": copies,
            }
        )
