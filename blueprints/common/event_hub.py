"""Common-capability layer (7.3), event hub: Node-RED flows from broker events to actions."""

from __future__ import annotations

from typing import ClassVar

from citykit.contract import layers
from citykit.contract.component import Check
from citykit.contract.component import Component
from citykit.contract.component import Image
from citykit.contract.component import LocalImage
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.objects.build import Build

# Node-RED from npm on Debian's nodejs 18 (node-red 4 needs node >= 18.5), started as the
# nodered/node-red image starts it: red.js with the user directory /data, where flows and
# settings live (the workload's writable volume), further arguments after it. npm is used for the
# install only, so the editor's palette manager cannot install nodes at run time.
NODE_RED_LOCAL = LocalImage(
    version="4.0.9",
    source="npm:node-red@4.0.9 + debian:bookworm nodejs",
    debian=("ca-certificates",),  # for flows that call HTTPS services
    npm=("node-red@4.0.9",),
    script="mkdir -p /data\nchown 10001:10001 /data\n",
    user_name="node-red",
    entrypoint=("/usr/bin/node", "/opt/app/node_modules/node-red/red.js", "--userDir", "/data"),
    env=(
        ("HOME", "/data"),
        ("NODE_PATH", "/opt/app/node_modules:/data/node_modules"),
        ("FLOWS", "flows.json"),
    ),
    workdir="/opt/app",
    check="node /opt/app/node_modules/node-red/red.js --help | grep -q 'Node-RED v4.0.9'",
)


@component
class NodeRed(Component):
    name: ClassVar[str] = "node-red"
    capability: ClassVar[str] = "event-hub"
    layer = layers.COMMON
    summary: ClassVar[str] = (
        "Event hub of the city intelligent hub: flows from broker events to actions."
    )
    docs: ClassVar[str] = (
        "Node-RED as the workflow / event hub slot: flows subscribe to the message broker's city "
        "topics and call application APIs through the gateway."
    )
    requires = ("message-broker",)
    real_run: ClassVar[str] = (
        "OOM-killed at start with a 51 MiB memory limit (a size factor of 0.1): Node.js needs "
        "more than that to load the palette. The `local` environment keeps dev's size factor."
    )
    images = {"main": Image("docker.io/nodered/node-red", "4.0.9")}
    local_images = {"main": NODE_RED_LOCAL}
    ports = (Port("http", 1880),)
    resources = Resources(cpu_millis=250, memory_mi=512)
    workload = Workload(Probe("http", "/"), writable=("/tmp", "/data"))
    checks = (
        Check(
            "the editor and its flows API answer",
            'set -eu\nbase="http://$TARGET:$PORT_HTTP"\n'
            'curl -fsS --max-time 10 -o /tmp/editor "$base/"\n'
            'grep -q "<title>Node-RED</title>" /tmp/editor\n'
            'curl -fsS --max-time 10 -H "Node-RED-API-Version: v2" "$base/flows" '
            "| jq -e .rev >/dev/null\n"
            'echo "editor served, flows API at revision $(curl -fsS --max-time 10 '
            '-H "Node-RED-API-Version: v2" "$base/flows" | jq -r .rev)"\n',
        ),
    )

    def values(self, build: Build) -> TemplateValues:
        return TemplateValues(env={"CITY_BROKER": build.peer("message-broker").host})
