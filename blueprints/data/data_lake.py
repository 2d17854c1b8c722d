"""Data layer (7.2), data lake: MinIO, the S3-compatible object store."""

from __future__ import annotations

from typing import ClassVar

from citykit.blueprints.shared import MC
from citykit.blueprints.shared import StoreSettings

from citykit.contract import layers
from citykit.contract.component import Backup
from citykit.contract.component import Check
from citykit.contract.component import Component
from citykit.contract.component import Image
from citykit.contract.component import LocalImage
from citykit.contract.component import Metrics
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import RestoreDrill
from citykit.contract.component import SecretSpec
from citykit.contract.component import SizingRule
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import GB_per_day
from citykit.contract.sizing import city
from citykit.contract.sizing import days
from citykit.contract.sizing import figure
from citykit.conventions import pod_host
from citykit.objects.build import Build

# The root credentials put an object named after the run in bucket `citykit-verify` (created
# when missing), read it back and delete it. curl 7.88 signs a body without sending its hash,
# which S3 requires for a PUT with content, so the hash is sent by hand. Failures show the
# HTTP status and S3's error code only (an error body names the key and the request).
MINIO_ROUND_TRIP = r"""
set -eu
bucket="http://$TARGET:$PORT_S3/citykit-verify"
object="$bucket/$RUN.txt"
s3() {
  curl -sS --max-time 10 --aws-sigv4 "aws:amz:us-east-1:s3" --user "$USER:$PASSWORD" \
    -o /tmp/body -w '%{http_code}' "$@"
}
fail() {
  echo "$1: HTTP $2 $(sed -n 's:.*<Code>\([^<]*\)</Code>.*:\1:p' /tmp/body | head -c 80)"
  exit 1
}
code=$(s3 -I "$bucket")
if [ "$code" = 404 ]; then
  code=$(s3 -X PUT "$bucket")
  [ "$code" = 200 ] || fail "creating bucket citykit-verify" "$code"
elif [ "$code" != 200 ]; then
  fail "looking up bucket citykit-verify" "$code"
fi
hash=$(printf %s "$RUN" | sha256sum | cut -c1-64)
code=$(s3 -X PUT -H "x-amz-content-sha256: $hash" -H "Content-Type: text/plain" \
  --data-binary "$RUN" "$object")
[ "$code" = 200 ] || fail "put citykit-verify/$RUN.txt" "$code"
code=$(s3 "$object")
[ "$code" = 200 ] || fail "get citykit-verify/$RUN.txt" "$code"
if [ "$(cat /tmp/body)" != "$RUN" ]; then
  echo "get citykit-verify/$RUN.txt returned other content ($(wc -c < /tmp/body) bytes)"
  exit 1
fi
code=$(s3 -X DELETE "$object")
[ "$code" = 204 ] || fail "delete citykit-verify/$RUN.txt" "$code"
echo "put, got back and deleted citykit-verify/$RUN.txt"
"""


# The ports MinIO declares, which its arguments and the backup name too.
S3_PORT = 9000
CONSOLE_PORT = 9001
# The root credentials, as the backup, its drill and the check read them.
ROOT_ENV = (("USER", "root", "user"), ("PASSWORD", "root", "password"))
# Upstream's server and client (the minio image ships mc too), built from their Go modules at the
# releases of the pinned tags (tools/minio, tools/mc). HOME is /tmp, which the workload mounts
# writable: the server keeps ~/.minio/certs there, mc its config.
MINIO_LOCAL = LocalImage(
    version="RELEASE.2025-04-22T22-12-26Z",
    source="go:github.com/minio/minio@RELEASE.2025-04-22T22-12-26Z + github.com/minio/mc",
    debian=("ca-certificates",),
    tools=(("/usr/bin/minio", "minio"), ("/usr/bin/mc", "mc")),
    script="mkdir -p /data\n",
    entrypoint=("/usr/bin/minio",),
    env=(("HOME", "/tmp"), ("MINIO_UPDATE", "off"), ("MC_CONFIG_DIR", "/tmp/.mc")),
    check="minio --version | grep -q 'RELEASE.2025-04-22T22-12-26Z'\n"
    "mc --version | grep -q 'RELEASE.2025-04-16T18-13-26Z'",
)
MC_LOCAL = LocalImage(
    version="RELEASE.2025-04-16T18-13-26Z",
    source="go:github.com/minio/mc@RELEASE.2025-04-16T18-13-26Z",
    debian=("ca-certificates",),
    tools=(("/usr/bin/mc", "mc"),),
    entrypoint=("/usr/bin/mc",),
    env=(("HOME", "/tmp"), ("MC_CONFIG_DIR", "/tmp/.mc")),
    check="mc --version | grep -q 'RELEASE.2025-04-16T18-13-26Z'",
)
# The whole lake mirrored to /backup/latest (buckets as directories). mc refuses a target
# directory that does not exist, so the first backup ever made used to fail; the wait lets
# network policies admit the new pod first.
MINIO_BACKUP = rf"""
set -eu
export MC_HOST_lake="http://$USER:$PASSWORD@$TARGET:{S3_PORT}" MC_CONFIG_DIR=/tmp/.mc
attempt=0
until mc ls lake/ >/dev/null 2>&1; do
  attempt=$((attempt + 1)); [ "$attempt" -ge 30 ] && break; sleep 1
done
mkdir -p /backup/latest
mc mirror --quiet --overwrite --remove lake/ /backup/latest/
echo "mirrored the lake: $(find /backup/latest -type f | wc -l) objects"
"""
# The drill's marker is the object citykit-verify/drill-marker.txt (bucket created when missing).
MINIO_DRILL_MARK = r"""
set -eu
bucket="http://$TARGET:$PORT_S3/citykit-verify"
s3() {
  curl -sS --max-time 10 --aws-sigv4 "aws:amz:us-east-1:s3" --user "$USER:$PASSWORD" \
    -o /tmp/body -w '%{http_code}' "$@"
}
code=$(s3 -I "$bucket")
if [ "$code" = 404 ]; then code=$(s3 -X PUT "$bucket"); fi
[ "$code" = 200 ] || { echo "bucket citykit-verify: HTTP $code"; exit 1; }
hash=$(printf %s "$MARKER" | sha256sum | cut -c1-64)
code=$(s3 -X PUT -H "x-amz-content-sha256: $hash" --data-binary "$MARKER" \
  "$bucket/drill-marker.txt")
[ "$code" = 200 ] || { echo "put citykit-verify/drill-marker.txt: HTTP $code"; exit 1; }
echo "marker written"
"""
# A scratch MinIO on 127.0.0.1 in /tmp, every mirrored bucket copied into it, the marker read.
MINIO_DRILL_RESTORE = r"""
set -eu
export HOME=/tmp MC_CONFIG_DIR=/tmp/.mc MINIO_UPDATE=off
secret="scratch-$MARKER"
MINIO_ROOT_USER=scratch MINIO_ROOT_PASSWORD="$secret" minio server /tmp/scratch \
  --address 127.0.0.1:9100 --console-address 127.0.0.1:9101 >/tmp/minio.log 2>&1 &
export MC_HOST_scratch="http://scratch:$secret@127.0.0.1:9100"
attempt=0
until mc ls scratch/ >/dev/null 2>&1; do
  attempt=$((attempt + 1)); [ "$attempt" -ge 60 ] && { tail -n 3 /tmp/minio.log; exit 1; }
  sleep 1
done
buckets=0
for directory in /backup/latest/*/; do
  [ -d "$directory" ] || continue
  name=$(basename "$directory")
  mc mb --ignore-existing "scratch/$name" >/dev/null
  mc mirror --quiet --overwrite "$directory" "scratch/$name" >/dev/null
  buckets=$((buckets + 1))
done
found=$(mc cat scratch/citykit-verify/drill-marker.txt 2>/dev/null || true)
if [ "$found" = "$MARKER" ]; then
  echo "restored $buckets bucket(s) into a scratch MinIO: marker found"
  exit 0
fi
echo "restored $buckets bucket(s) into a scratch MinIO: marker not found"
exit 1
"""


@component
class Minio(Component):
    name: ClassVar[str] = "minio"
    capability: ClassVar[str] = "data-lake"
    layer = layers.DATA
    summary: ClassVar[str] = (
        "S3-compatible object store: the city data lake (raw, curated, shared zones)."
    )
    docs: ClassVar[str] = (
        "MinIO in distributed mode: every replica holds a share of the erasure-coded data, so the "
        "lake survives the loss of a node. Capacity is derived from the city's daily data volume "
        "and a 180-day hot retention; buckets for raw, curated and shared data are created by the "
        "applications that own them."
    )
    images = {
        "main": Image("quay.io/minio/minio", "RELEASE.2025-04-22T22-12-26Z"),
        "mc": MC,
    }
    local_images = {"main": MINIO_LOCAL, "mc": MC_LOCAL}
    real_run: ClassVar[str] = (
        "Server and client are upstream's releases built from their Go modules. The first "
        "restore drill found that the backup had never worked: `mc mirror` refuses a target "
        "directory that does not exist (`Requested path /backup/latest/ not found`), so the "
        "backup Job now creates it, and waits until the lake answers before it mirrors."
    )
    Settings = StoreSettings
    sizing = (
        SizingRule(
            "replicas",
            4 + city.daily_data_gb / GB_per_day(2_000),
            why="erasure coding's smallest set of servers, more as the data grows",
            scales_with="replicas",
            minimum=1,
            maximum=32,
        ),
        SizingRule(
            "storage_gi",
            city.daily_data_gb * days(180) * 1.5 / figure("replicas"),
            why="the retention period's data with erasure-coding overhead, spread over the servers",
            scales_with="size",
            unit="GiB",
        ),
    )
    ports = (Port("s3", S3_PORT), Port("console", CONSOLE_PORT))
    resources = Resources(cpu_millis=500, memory_mi=2048)
    secrets = (SecretSpec("root", ("user", "password")),)
    stateful: ClassVar[bool] = True
    quorum: ClassVar[bool] = True
    metrics = Metrics("s3", "/minio/v2/metrics/cluster")
    backup = Backup(
        MC,
        MINIO_BACKUP,
        ROOT_ENV,
        drill=RestoreDrill(MINIO_DRILL_MARK, MINIO_DRILL_RESTORE, ROOT_ENV, memory_mi=1024),
    )
    checks = (
        Check("the lake accepts a put and a get in the city's bucket", MINIO_ROUND_TRIP, ROOT_ENV),
    )
    workload = Workload(
        Probe("s3", "/minio/health/live"),
        kind="StatefulSet",
        replicas="replicas",
        storage="storage_gi",
        data_path="/data",
        args=("server",),
    )

    def values(self, build: Build) -> TemplateValues:
        me = build.component
        # More than one server is one distributed MinIO: every server names all the drives, so
        # that the objects are erasure-coded across them. Each server given only its own /data
        # would be a lake of its own behind the one Service: a bucket made through one server
        # is missing on the next (the staging lake on kind answered NoSuchBucket).
        hosts = [pod_host(me.name, i, me.namespace) for i in range(me.replicas)]
        drives = ("/data",) if me.replicas == 1 else tuple(f"http://{h}/data" for h in hosts)
        return TemplateValues(
            extra_args=(*drives, "--console-address", f":{CONSOLE_PORT}"),
            env={"MINIO_PROMETHEUS_AUTH_TYPE": "public"},
            secret_env=(
                self.secret_env("MINIO_ROOT_USER", "root", "user"),
                self.secret_env("MINIO_ROOT_PASSWORD", "root", "password"),
            ),
        )
