"""The image `citykit verify` runs its probe pods from, declared like a component's images: the
plan's registry allow-list (plan/admission.py) admits it, and the local images `up` loads onto a
real node include it. The probe pods themselves are verify/probe.py's."""

from __future__ import annotations

from citykit.contract.component import Image
from citykit.contract.component import LocalImage
from citykit.plan.planned import Plan

PROBE_COMPONENT = "citykit-verify"  # the image path and the identity of a pod that is no component
PROBE_KEY = "probe"
PROBE_UID = 10001

# Clients of everything the catalog's checks talk to: HTTP (curl, with S3 signing), JSON (jq),
# PostgreSQL (psql), MQTT (mosquitto_pub/sub), Kafka (kcat) and plain TCP (nc).
PROBE_LOCAL = LocalImage(
    version="1",
    source="debian:bookworm curl jq postgresql-client mosquitto-clients kcat netcat-openbsd",
    debian=(
        "curl",
        "ca-certificates",
        "jq",
        "postgresql-client",
        "mosquitto-clients",
        "kcat",
        "netcat-openbsd",
    ),
    user=PROBE_UID,
    user_name="probe",
    entrypoint=("/bin/sh",),
    check="curl --version >/dev/null && psql --version >/dev/null && command -v mosquitto_pub && "
    "command -v mosquitto_sub && command -v kcat && command -v nc && command -v jq",
)
# What clusters that pull images run: the same image, pushed to the city's registry mirror
# (`citykit images build` writes its archive; no public registry has it).
PROBE_IMAGE = Image("ghcr.io/citykit/verify-probe", PROBE_LOCAL.version)


def probe_ref(plan: Plan) -> str:
    """The probe image for the plan's environment: the local build where the environment uses
    local images, else the upstream reference through the mirror."""
    if plan.environment.local_images:
        return PROBE_LOCAL.ref(PROBE_COMPONENT, PROBE_KEY)
    return PROBE_IMAGE.ref(plan.environment.registry_mirror)
