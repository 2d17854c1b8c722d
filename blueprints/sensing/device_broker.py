"""MQTT device brokers (7.1.1): EMQX by default, Mosquitto for small cities."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from citykit.contract import layers
from citykit.contract.component import Check
from citykit.contract.component import Component
from citykit.contract.component import ComponentSettings
from citykit.contract.component import Image
from citykit.contract.component import LocalImage
from citykit.contract.component import PodSecurityException
from citykit.contract.component import Port
from citykit.contract.component import Resources
from citykit.contract.component import SecretSpec
from citykit.contract.component import SizingRule
from citykit.contract.registry import component
from citykit.contract.sizing import Num
from citykit.contract.sizing import city
from citykit.contract.sizing import max_of
from citykit.contract.sizing import msg_per_s

# Debian's Mosquitto laid out like the eclipse-mosquitto image: uid 1883, config, data and log
# under /mosquitto, the same CMD (its entrypoint only execs the command). The workload mounts
# its config over /mosquitto/config and a scratch volume at /mosquitto/data.
MOSQUITTO_LOCAL = LocalImage(
    version="2.0.11",
    source="debian:bookworm mosquitto",
    debian=("mosquitto",),
    script="""
mkdir -p /mosquitto/config /mosquitto/data /mosquitto/log
printf '%s\n' 'persistence true' 'persistence_location /mosquitto/data/' 'log_dest stdout' \
  > /mosquitto/config/mosquitto.conf
chown -R 1883:1883 /mosquitto
""",
    user=1883,
    user_name="mosquitto",
    cmd=("/usr/sbin/mosquitto", "-c", "/mosquitto/config/mosquitto.conf"),
    check="/usr/sbin/mosquitto -h | grep -q '^mosquitto version 2.0.11'",
)


# Checks shared by the MQTT brokers: a subscriber on a topic under `citykit-verify/` gets what an
# authenticated client publishes there (published until it arrives, as the subscription may
# not be in place yet); a client without credentials is refused by the broker, not the network.
MQTT_ROUND_TRIP = """
topic="citykit-verify/$RUN"
auth() { "$@" -h "$TARGET" -p "$PORT_MQTT" -u "$MQTT_USER" -P "$MQTT_PASSWORD" -t "$topic"; }
auth mosquitto_sub -C 1 -W 20 > /tmp/received &
subscriber=$!
sent=0
while kill -0 "$subscriber" 2>/dev/null && [ "$sent" -lt 15 ]; do
  auth mosquitto_pub -q 1 -m "$RUN" && sent=$((sent + 1))
  sleep 1
done
wait "$subscriber" || true
if grep -qx "$RUN" /tmp/received; then
  echo "delivered on $topic after $sent publish(es)"
  exit 0
fi
echo "nothing received on $topic after $sent publish(es)"
exit 1
"""
MQTT_ANONYMOUS_REFUSED = """
if mosquitto_pub -h "$TARGET" -p "$PORT_MQTT" -t "citykit-verify/$RUN/anonymous" -m x \
    2>/tmp/error; then
  echo "an anonymous publish was accepted"
  exit 1
fi
if grep -qi "not authori" /tmp/error; then
  echo "refused: $(tr '\\n' ' ' < /tmp/error | head -c 120)"
  exit 0
fi
echo "failed for another reason than authorisation: $(head -c 200 /tmp/error)"
exit 1
"""


class BrokerSettings(ComponentSettings):
    replicas: int | None = Field(None, ge=1, le=64, description="Broker nodes (default: derived).")


@component
class Emqx(Component):
    name: ClassVar[str] = "emqx"
    capability: ClassVar[str] = "device-broker"
    layer = layers.SENSING
    summary: ClassVar[str] = "MQTT broker for field devices, clustered."
    images = {"broker": Image("docker.io/emqx/emqx", "5.8.6")}
    Settings = BrokerSettings
    sizing = (
        SizingRule(
            "replicas",
            max_of(3, city.devices / 50_000, city.peak_messages_per_second / msg_per_s(10_000)),
            why="a quorum, then nodes for connections or throughput, whichever needs more",
            scales_with="replicas",
            maximum=64,
        ),
    )
    ports = (
        Port("mqtt", 1883, exposed_to="devices"),
        Port("mqtts", 8883, exposed_to="devices"),
        Port("dashboard", 18083),
    )
    resources = Resources(cpu_millis=500, memory_mi=1024)
    exceptions = (
        PodSecurityException(
            "readOnlyRootFilesystem",
            "EMQX rewrites its generated config under /opt/emqx/etc at boot",
        ),
    )


@component
class Mosquitto(Component):
    name: ClassVar[str] = "mosquitto"
    capability: ClassVar[str] = "device-broker"
    layer = layers.SENSING
    default: ClassVar[bool] = False
    summary: ClassVar[str] = "Single-node MQTT broker for small cities (under ~20,000 devices)."
    images = {"broker": Image("docker.io/library/eclipse-mosquitto", "2.0.22")}
    local_images = {"broker": MOSQUITTO_LOCAL}
    Settings = BrokerSettings
    sizing = (SizingRule("replicas", Num(1), why="Mosquitto does not cluster"),)
    ports = (Port("mqtt", 1883, exposed_to="devices"),)
    resources = Resources(cpu_millis=200, memory_mi=256)
    real_run: ClassVar[str] = (
        "The first real run exited at start: the config names `password_file "
        "/mosquitto/secret/passwd`, which nothing wrote (`Error: Unable to open pwfile`), and "
        "Mosquitto 2 reads only hashed password files. The component now declares generated "
        "device credentials (Secret `mosquitto-devices`), and an init container writes them and "
        "hashes them in place with `mosquitto_passwd -U` into an in-memory volume, with its own "
        "writable /tmp (the tool writes a temporary file there; the root filesystem is read-only)."
    )
    # The devices' MQTT credentials; the broker refuses anonymous clients.
    secrets = (SecretSpec("devices", ("user", "password")),)
    checks = (
        Check(
            "an authenticated publish is delivered to a subscriber",
            MQTT_ROUND_TRIP,
            (("MQTT_USER", "devices", "user"), ("MQTT_PASSWORD", "devices", "password")),
        ),
        Check("an anonymous client is refused", MQTT_ANONYMOUS_REFUSED),
    )
