"""Operations and maintenance system (7.6), logging: Loki, with the audit streams kept 180 days
(等保 security audit)."""

from __future__ import annotations

import json
from typing import ClassVar

from citykit.blueprints.shared import CURL
from citykit.blueprints.shared import MC
from citykit.blueprints.shared import RetentionSettings
from pydantic import Field

from citykit.contract import layers
from citykit.contract.component import Backup
from citykit.contract.component import Check
from citykit.contract.component import Component
from citykit.contract.component import FieldEnv
from citykit.contract.component import Image
from citykit.contract.component import InitContainer
from citykit.contract.component import Metrics
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import Retention
from citykit.contract.component import SecretSpec
from citykit.contract.component import SizingRule
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import GB_per_day
from citykit.contract.sizing import GiB
from citykit.contract.sizing import choose
from citykit.contract.sizing import city
from citykit.contract.sizing import days
from citykit.contract.sizing import figure
from citykit.objects.build import Build
from citykit.plan import monitoring


class LogsSettings(RetentionSettings):
    replicas: int | None = Field(
        None, ge=1, le=32, description="Replicas in the ring (default: derived)."
    )
    replication_factor: int | None = Field(
        None,
        ge=1,
        le=5,
        description="Copies the replicas keep of each stream, at most `replicas` "
        "(default: derived).",
    )


# A line carrying the run's marker pushed to stream {job="citykit-verify"}, then queried back
# (ingestion is asynchronous: retried for up to 10 s).
LOKI_ROUND_TRIP = r"""
set -eu
base="http://$TARGET:$PORT_HTTP"
jq -nc --arg ts "$(date +%s%N)" --arg line "citykit-verify marker $RUN" \
  '{streams: [{stream: {job: "citykit-verify"}, values: [[$ts, $line]]}]}' > /tmp/push
code=$(curl -sS --max-time 10 -o /tmp/pushed -w '%{http_code}' \
  -H "Content-Type: application/json" --data-binary @/tmp/push "$base/loki/api/v1/push")
if [ "$code" != 204 ]; then
  echo "push refused: HTTP $code $(head -c 160 /tmp/pushed)"
  exit 1
fi
: > /tmp/error
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  if curl -fsS --max-time 10 -G -o /tmp/found "$base/loki/api/v1/query_range" \
      --data-urlencode "query={job=\"citykit-verify\"} |= \"$RUN\"" \
      --data-urlencode since=15m --data-urlencode limit=10 2>/tmp/error; then
    jq -r '.data.result[].values[][1]' /tmp/found > /tmp/lines 2>/dev/null || : > /tmp/lines
    if grep -qF "$RUN" /tmp/lines; then
      echo "pushed and read back on {job=\"citykit-verify\"} ($attempt attempt(s))"
      exit 0
    fi
  fi
  sleep 1
done
echo "the pushed line was not returned within 10 s $(head -c 160 /tmp/error)"
exit 1
"""


HTTP_PORT = 3100  # the port Loki declares (and its configuration listens on), named by its backup


@component
class Loki(Component):
    name: ClassVar[str] = "loki"
    capability: ClassVar[str] = "logging"
    layer = layers.OPERATIONS
    summary: ClassVar[str] = "Loki: log store; audit streams kept 180 days (等保 security audit)."
    docs: ClassVar[str] = (
        "Loki in monolithic mode with a 180-day retention for audit streams (`stream=audit`) "
        "and 30 days for the rest. Where the `replicas` figure is one (dev, local) it is a "
        "single instance with its logs on its volume. Above one (prod, staging) it is scaled "
        "out as upstream documents: the replicas form a memberlist ring through their headless "
        "Service (gossip on port 7946, queries and pushes among them on gRPC port 9095, neither "
        "open to other components), keep `replication_factor` copies of what they ingest, and "
        "share chunks and index in the data lake (bucket `loki`, made by an init container "
        "with MinIO's client; the lake's keys are copied into Loki's namespace and read from "
        "the environment); the compactor, which applies retention, runs on one replica. A "
        "replicated Loki requires the data lake. Node-level log shipping needs a privileged "
        "agent, which restricted Pod Security forbids in the city's namespaces: `citykit "
        "compliance` lists it as a gap for the cluster operator."
    )
    replicated_requires = ("data-lake",)
    images = {"main": Image("docker.io/grafana/loki", "3.4.3"), "mc": MC}
    Settings = LogsSettings
    sizing = (
        SizingRule(
            "replicas",
            2 + city.daily_data_gb / GB_per_day(6_000),
            why="a pair, and a replica more for each share of logs a single Loki ingests, the "
            "logs being a fixed part of the city's data; rounded up, any city with data runs "
            "a third, so that writes keep a majority of their copies while a replica is down",
            scales_with="replicas",
            maximum=32,
        ),
        SizingRule(
            "replication_factor",
            choose(figure("replicas") < 3, 1, 3),
            why="copies of every stream kept by the replicas until it is flushed to the lake: a "
            "write needs a majority of its copies, so three survive a replica down, while two "
            "would stop writes whenever either is; a single copy below three replicas",
            not_above="replicas",
        ),
        SizingRule(
            "storage_gi",
            choose(
                figure("replicas") < 2,
                GiB(20) + city.daily_data_gb * days(180) / 300,
                GiB(20),
            ),
            why="a single instance keeps the logs, in proportion to the city's data, for the "
            "audit retention period; replicas keep only their write-ahead log and index "
            "caches, the logs being in the data lake",
            scales_with="size",
            unit="GiB",
        ),
    )
    # Among the replicas only: gRPC (pushes to the ingesters, queries, the scheduler's ring) and
    # memberlist gossip. A single instance does not gossip.
    ports = (
        Port("http", HTTP_PORT),
        Port("grpc", 9095, exposed_to="self"),
        Port("memberlist", monitoring.MEMBERLIST_PORT, exposed_to="self"),
    )
    resources = Resources(cpu_millis=250, memory_mi=1024)
    # Only where replicated (a peer of the data lake): the lake's keys, for its bucket.
    secrets = (SecretSpec("lake", ("user", "password"), same_as="data-lake:root"),)
    stateful: ClassVar[bool] = True
    metrics = Metrics("http")
    # The audit stream is what must survive (等保 security audit): exported nightly.
    backup = Backup(
        CURL,
        f'curl -fsS -G "http://$TARGET:{HTTP_PORT}/loki/api/v1/query_range" '
        "--data-urlencode 'query={stream=\"audit\"}' --data-urlencode limit=5000 "
        "--data-urlencode since=24h -o /backup/audit-$(date +%Y%m%dT%H%M).json",
        # One export a night, kept for the audit stream's 180 days.
        keep=Retention("audit-*.json", monitoring.AUDIT_RETENTION_DAYS),
    )
    checks = (Check("accepts a pushed log line and returns it", LOKI_ROUND_TRIP),)
    workload = Workload(
        Probe("http", "/ready"),
        kind="StatefulSet",
        replicas="replicas",
        storage="storage_gi",
        data_path="/loki",
        config_path="/etc/loki",
        run_as=10001,
        args=("-config.file=/etc/loki/loki.yaml",),
    )

    def values(self, build: Build) -> TemplateValues:
        me = build.component
        # The lake is a peer only where Loki is replicated (`replicated_requires`).
        lake = build.optional_peer("data-lake")
        config = monitoring.loki_config(me, lake.planned if lake else None)
        files = {"loki.yaml": json.dumps(config, sort_keys=True, indent=1)}
        if me.replicas == 1:
            return TemplateValues(config=files)
        keys = (
            self.secret_env(monitoring.S3_ACCESS_KEY, "lake", "user"),
            self.secret_env(monitoring.S3_SECRET_KEY, "lake", "password"),
        )
        lake_host = config["common"]["storage"]["s3"]["endpoint"]
        return TemplateValues(
            config=files,
            extra_args=("-config.expand-env=true", "-target=all"),
            field_env=(FieldEnv(monitoring.POD_IP, "status.podIP"),),
            secret_env=keys,
            # Loki does not make its bucket. mc fails until the lake answers, and the init
            # container is run again (with back-off) until it has made it or found it made.
            init_containers=(
                InitContainer(
                    "bucket",
                    me.images["mc"],
                    ("mb", "--ignore-existing", f"lake/{monitoring.LOKI_BUCKET}"),
                    env={
                        "MC_CONFIG_DIR": "/tmp/.mc",
                        "MC_HOST_lake": f"http://$({monitoring.S3_ACCESS_KEY}):"
                        f"$({monitoring.S3_SECRET_KEY})@{lake_host}",
                    },
                    secret_env=keys,
                ),
            ),
        )
