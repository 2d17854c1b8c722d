"""Operations and maintenance system (7.6), alerting: Alertmanager, alerts grouped and routed
by reference-model layer."""

from __future__ import annotations

import json
from typing import ClassVar

from pydantic import Field

from citykit.contract import layers
from citykit.contract.component import Check
from citykit.contract.component import Component
from citykit.contract.component import ComponentSettings
from citykit.contract.component import FieldEnv
from citykit.contract.component import Image
from citykit.contract.component import LocalImage
from citykit.contract.component import Metrics
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import SizingRule
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import Num
from citykit.conventions import pod_host
from citykit.objects.build import Build

CLUSTER_PORT = 9094  # Alertmanager's gossip


# Debian's Alertmanager 0.25 (upstream's image: v0.28) laid out as upstream's: /bin/alertmanager,
# the default config at /etc/alertmanager/alertmanager.yml, data in /alertmanager.
ALERTMANAGER_LOCAL = LocalImage(
    version="v0.25.0",
    source="debian:bookworm prometheus-alertmanager",
    debian=("prometheus-alertmanager",),
    script="""
ln -s /usr/bin/prometheus-alertmanager /usr/bin/alertmanager
mkdir -p /etc/alertmanager /alertmanager
cp /etc/prometheus/alertmanager.yml /etc/alertmanager/alertmanager.yml
chown 65534:65534 /alertmanager
""",
    user=65534,
    user_name="nobody",
    entrypoint=("/bin/alertmanager",),
    cmd=("--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"),
    workdir="/alertmanager",
    check="alertmanager --version 2>&1 | grep -q 'version 0.25'\n"
    "amtool check-config /etc/alertmanager/alertmanager.yml >/dev/null",
)


class AlertingSettings(ComponentSettings):
    replicas: int | None = Field(
        None, ge=1, le=5, description="Replicas in the gossip cluster (default: derived)."
    )


READY = """
set -eu
curl -fsS --max-time 10 -o /tmp/ready "http://$TARGET:$PORT_HTTP/-/ready"
head -c 100 /tmp/ready
"""


@component
class Alertmanager(Component):
    name: ClassVar[str] = "alertmanager"
    capability: ClassVar[str] = "alerting"
    layer = layers.OPERATIONS
    summary: ClassVar[str] = "Alertmanager: groups and routes alerts by reference-model layer."
    docs: ClassVar[str] = (
        "Alerts are grouped by layer and component and routed to the city's on-call receiver "
        "(a webhook the operations team configures). Where the `replicas` figure is above one "
        "(prod, staging) the replicas form a gossip cluster (a StatefulSet, peers by their "
        "stable names, port 9094): Prometheus sends every alert to every replica, the cluster "
        "shares silences and sends each notification once, and a restarted replica takes its "
        "state back from its peers. A single replica (dev, local) is a Deployment with "
        "clustering off."
    )
    images = {"main": Image("docker.io/prom/alertmanager", "v0.28.1")}
    local_images = {"main": ALERTMANAGER_LOCAL}
    Settings = AlertingSettings
    sizing = (
        SizingRule(
            "replicas",
            Num(2),
            why="a gossip cluster that shares silences and notifies once, so either replica "
            "alone keeps alerting",
            scales_with="replicas",
        ),
    )
    # Gossip among the replicas only (memberlist: TCP here; its UDP share passes the `-peers`
    # policies too, which name no port). A single replica does not listen on it.
    ports = (Port("http", 9093), Port("cluster", CLUSTER_PORT, exposed_to="self"))
    resources = Resources(cpu_millis=100, memory_mi=256)
    metrics = Metrics("http")
    checks = (Check("is ready", READY),)
    # Not a quorum: every replica notifies on its own once its peers are out of reach (at worst
    # a duplicate notification), so one replica down at a time is all the budget keeps.
    # /-/ready answers once the web server runs, not on the cluster's state: a replica whose
    # peers are unreachable still takes alerts, as it should.
    workload = Workload(
        Probe("http", "/-/ready"),
        replicas="replicas",
        peer_names=True,
        config_path="/etc/alertmanager",
        run_as=65534,
        args=(
            "--config.file=/etc/alertmanager/alertmanager.yml",
            "--storage.path=/tmp/alertmanager",
        ),
    )

    def values(self, build: Build) -> TemplateValues:
        config = {
            "route": {
                "receiver": "on-call",
                "group_by": ["layer", "component", "alertname"],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "4h",
            },
            "receivers": [{"name": "on-call"}],
        }
        files = {"alertmanager.yml": json.dumps(config, sort_keys=True, indent=1)}
        me = build.component
        if me.replicas == 1:
            # Alertmanager listens for gossip by default: a lone replica has no one to hear.
            return TemplateValues(config=files, extra_args=("--cluster.listen-address=",))
        # The pod's IP as its address in the cluster: Alertmanager would otherwise look for a
        # private (RFC 1918) address among its interfaces and refuse to start without one.
        return TemplateValues(
            config=files,
            extra_args=(
                f"--cluster.listen-address=0.0.0.0:{CLUSTER_PORT}",
                f"--cluster.advertise-address=$(POD_IP):{CLUSTER_PORT}",
                *(
                    f"--cluster.peer={pod_host(me.name, i, me.namespace)}:{CLUSTER_PORT}"
                    for i in range(me.replicas)
                ),
            ),
            field_env=(FieldEnv("POD_IP", "status.podIP"),),
        )
