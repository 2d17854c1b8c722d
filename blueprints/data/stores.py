"""Data layer (7.2): the object-store data lake, the relational + spatial database, the time-series
store, the stream-processing slot and the data catalog."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from citykit.contract import layers
from citykit.contract.component import (
    ApiAccess,
    Backup,
    Check,
    Component,
    ComponentSettings,
    Image,
    LocalImage,
    Metrics,
    PodSecurityException,
    Port,
    Probe,
    Resources,
    RestoreDrill,
    SecretSpec,
    SizingRule,
    Workload,
)
from citykit.contract.registry import component
from citykit.contract.sizing import (
    B,
    GB_per_day,
    GiB,
    Num,
    city,
    days,
    figure,
    max_of,
    min_of,
    msg_per_s,
)
from citykit.conventions import NAME_LABEL, ROLE_LABEL, selector_labels, service_host


class StoreSettings(ComponentSettings):
    replicas: int | None = Field(
        None, ge=1, le=64, description="Server replicas (default: derived)."
    )
    storage_gi: int | None = Field(
        None, ge=1, le=1_000_000, description="Volume size per replica in GiB (default: derived)."
    )


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


MC_IMAGE = Image("quay.io/minio/mc", "RELEASE.2025-04-16T18-13-26Z")
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
MINIO_BACKUP = r"""
set -eu
export MC_HOST_lake="http://$USER:$PASSWORD@$TARGET:9000" MC_CONFIG_DIR=/tmp/.mc
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
        "mc": MC_IMAGE,
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
    ports = (Port("s3", 9000), Port("console", 9001))
    resources = Resources(cpu_millis=500, memory_mi=2048)
    secrets = (SecretSpec("root", ("user", "password")),)
    stateful: ClassVar[bool] = True
    quorum: ClassVar[bool] = True
    metrics = Metrics("s3", "/minio/v2/metrics/cluster")
    backup = Backup(
        MC_IMAGE,
        MINIO_BACKUP,
        (("USER", "root", "user"), ("PASSWORD", "root", "password")),
        drill=RestoreDrill(
            MINIO_DRILL_MARK,
            MINIO_DRILL_RESTORE,
            (("USER", "root", "user"), ("PASSWORD", "root", "password")),
            memory_mi=1024,
        ),
    )
    checks = (
        Check(
            "the lake accepts a put and a get in the city's bucket",
            MINIO_ROUND_TRIP,
            (("USER", "root", "user"), ("PASSWORD", "root", "password")),
        ),
    )
    workload = Workload(
        Probe("s3", "/minio/health/live"),
        kind="StatefulSet",
        replicas="replicas",
        storage="storage_gi",
        data_path="/data",
        args=("server", "/data", "--console-address", ":9001"),
    )

    def values(self, build: Any) -> Mapping[str, Any]:
        return {
            "env": {"MINIO_PROMETHEUS_AUTH_TYPE": "public"},
            "secret_env": [
                {"name": "MINIO_ROOT_USER", "secret": "minio-root", "key": "user"},
                {"name": "MINIO_ROOT_PASSWORD", "secret": "minio-root", "key": "password"},
            ],
        }


# Patroni keeps one primary and streaming standbys, with the Kubernetes API as its consensus
# store: the leader holds the Endpoints object of the `postgis` Service (which has no selector),
# so clients always reach the primary, and a standby takes the Endpoints over when the primary's
# lease (ttl) runs out. The same configuration runs one instance (the replicas figure is 1) or
# several. Passwords come from the environment only (PATRONI_*_PASSWORD).
PATRONI_CONFIG_PATH = "/etc/patroni"
PATRONI_API_PORT = 8008
POSTGIS_DATA = "/var/lib/postgresql/data"
# Runs once, on the primary Patroni has just initialised, with a connection string: what the
# postgis image does on first start (the city database with the postgis extension).
POSTGIS_POST_BOOTSTRAP = """#!/bin/sh
set -eu
psql -v ON_ERROR_STOP=1 -d "$1" -c 'CREATE DATABASE city'
psql -v ON_ERROR_STOP=1 -d "$1 dbname=city" -c 'CREATE EXTENSION IF NOT EXISTS postgis'
"""
SPILO = Image("ghcr.io/zalando/spilo-17", "4.0-p2")
POSTGRES_BIN = "/usr/lib/postgresql/15/bin"
# Spilo (Zalando's PostgreSQL + Patroni + PostGIS image) runs as its postgres user, uid 101 and
# gid 103. initdb refuses a uid that /etc/passwd does not name, so the local image names uid 101
# postgres too.
POSTGRES_UID = 101
POSTGRES_GID = 103
# Debian bookworm has PostgreSQL 15, PostGIS 3.3 and Patroni 3.0 (upstream's Spilo: 17, 3.5 and
# 4.0); a data directory made by one major version cannot be opened by the other.
POSTGIS_LOCAL = LocalImage(
    version="15-3.3-patroni-3.0",
    source="debian:bookworm postgresql-15 postgresql-15-postgis-3 patroni",
    debian=("postgresql-15", "postgresql-15-postgis-3", "patroni", "python3-kubernetes"),
    script=f"""
rm -rf /var/lib/postgresql/15 /etc/postgresql/15
mkdir -p {POSTGIS_DATA} /run/postgresql
chown {POSTGRES_UID}:{POSTGRES_GID} {POSTGIS_DATA} /run/postgresql
chmod 1777 {POSTGIS_DATA}
chmod 3777 /run/postgresql
""",
    user=POSTGRES_UID,
    user_name="postgres",
    entrypoint=("patroni",),
    cmd=(f"{PATRONI_CONFIG_PATH}/patroni.yml",),
    env=(
        ("PATH", f"{POSTGRES_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        ("LANG", "C.UTF-8"),
        ("PGDATA", f"{POSTGIS_DATA}/pgdata"),
    ),
    # Patroni (not postgres) is the main process: SIGTERM makes it stop PostgreSQL and release
    # the leader lock, so a standby takes over at once (SIGINT was ignored until the kill).
    check="""
postgres --version | grep -q 'PostgreSQL) 15\\.'
patroni --version | grep -q 'patroni 3\\.'
initdb -D /tmp/check -U postgres --auth=trust >/dev/null
echo 'CREATE EXTENSION postgis; SELECT postgis_full_version();' \\
  | postgres --single -D /tmp/check postgres | grep -q 'POSTGIS="3.3'
""",
)


def patroni_config(namespace_labels: Mapping[str, str], scope: str) -> dict[str, Any]:
    """Patroni's configuration: Kubernetes as the consensus store (Endpoints, so the leader owns
    the Service's endpoints), password logins only, the city database made at bootstrap."""
    return {
        "scope": scope,
        "restapi": {"listen": f"0.0.0.0:{PATRONI_API_PORT}"},
        "kubernetes": {
            # The pods Patroni counts as members: the StatefulSet's own (the workload selector),
            # never the verify probes or backup Jobs that share the component's name label.
            "labels": dict(namespace_labels),
            "scope_label": NAME_LABEL,
            "use_endpoints": True,
            "ports": [{"name": "postgres", "port": 5432}],
        },
        "bootstrap": {
            "dcs": {
                "ttl": 30,
                "loop_wait": 10,
                "retry_timeout": 10,
                # A standby more than 1 MiB of WAL behind is not promoted (no silent data loss).
                "maximum_lag_on_failover": 1048576,
                "postgresql": {
                    "use_pg_rewind": True,
                    "parameters": {
                        "wal_level": "replica",
                        "hot_standby": "on",
                        "wal_log_hints": "on",
                        "max_wal_senders": 10,
                        "max_replication_slots": 10,
                    },
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            "post_bootstrap": f"sh {PATRONI_CONFIG_PATH}/post-bootstrap.sh",
        },
        "postgresql": {
            "listen": "0.0.0.0:5432",
            "data_dir": f"{POSTGIS_DATA}/pgdata",
            "pgpass": "/tmp/pgpass",
            # A new standby copies the primary at once (pg_basebackup's default waits for a
            # spread checkpoint: minutes).
            "basebackup": [{"checkpoint": "fast"}],
            "authentication": {
                "superuser": {"username": "postgres"},
                "replication": {"username": "replicator"},
            },
            "parameters": {"unix_socket_directories": "/var/run/postgresql"},
            "pg_hba": [
                "local all all trust",
                "host replication replicator all scram-sha-256",
                "host all all all scram-sha-256",
            ],
        },
    }


# psql reads the password from PGPASSWORD (never the command line); the city database is the
# one the workload creates (POSTGRES_DB).
POSTGIS_VERSION = """
set -eu
version=$(psql "host=$TARGET port=$PORT_POSTGRES user=postgres dbname=city connect_timeout=10" \
  -Atc 'SELECT postgis_full_version()')
echo "$version" | grep -q 'POSTGIS="' && echo "$version" | cut -c1-100
"""
POSTGRES_WRONG_PASSWORD = """
if PGPASSWORD="citykit-verify-wrong-$RUN" psql \
    "host=$TARGET port=$PORT_POSTGRES user=postgres dbname=city connect_timeout=10" \
    -Atc 'SELECT 1' >/dev/null 2>/tmp/error; then
  echo "a wrong password was accepted"
  exit 1
fi
grep -q "password authentication failed" /tmp/error \\
  && echo "refused: password authentication failed"
"""


# The newest 14 dumps are kept. A dump is complete or absent: /bin/sh has no pipefail, so
# pg_dumpall's failure is carried past gzip by hand (the first restore drill found 20-byte
# dumps from a pg_dumpall refused at start, in Jobs reported Complete), and a dump is renamed
# into place only when whole. The wait lets network policies admit the new pod first.
POSTGIS_BACKUP = r"""
set -eu
attempt=0
until pg_isready -q -h "$TARGET" -t 2; do
  attempt=$((attempt + 1)); [ "$attempt" -ge 30 ] && break; sleep 1
done
dump=/backup/city-$(date +%Y%m%dT%H%M%S).sql.gz
{ pg_dumpall -h "$TARGET" -U postgres || echo failed > /tmp/dump-failed; } | gzip > "$dump.partial"
if [ -e /tmp/dump-failed ]; then rm -f "$dump.partial"; echo "pg_dumpall failed"; exit 1; fi
mv "$dump.partial" "$dump"
ls -1t /backup/*.sql.gz | tail -n +15 | xargs -r rm --
echo "wrote $dump ($(wc -c < "$dump") bytes)"
"""
# The drill's marker lives in its own database, "citykit-verify" (one row: the last drill's).
POSTGIS_DRILL_MARK = r"""
set -eu
connect="host=$TARGET port=$PORT_POSTGRES user=postgres connect_timeout=10"
psql "$connect dbname=postgres" -Atc "SELECT 1 FROM pg_database WHERE datname = 'citykit-verify'" \
  | grep -q 1 || psql "$connect dbname=postgres" -qc 'CREATE DATABASE "citykit-verify"'
psql "$connect dbname=citykit-verify" -q -v marker="$MARKER" <<'SQL'
CREATE TABLE IF NOT EXISTS drill (marker text NOT NULL, written timestamptz DEFAULT now());
DELETE FROM drill;
INSERT INTO drill (marker) VALUES (:'marker');
SQL
echo "marker written"
"""
# A scratch PostgreSQL in /tmp (socket only, no network), the newest dump restored into it.
POSTGIS_DRILL_RESTORE = r"""
set -eu
latest=$(ls -1t /backup/*.sql.gz | head -n 1)
initdb -D /tmp/scratch -U postgres --auth=trust >/dev/null
pg_ctl -D /tmp/scratch -o "-c listen_addresses='' -k /tmp" -l /tmp/scratch.log -w start \
  >/dev/null
gunzip -c "$latest" | psql -h /tmp -U postgres -d postgres -q >/dev/null 2>/tmp/restore.log \
  || true
found=$(psql -h /tmp -U postgres -d citykit-verify -Atc \
  "SELECT count(*) FROM drill WHERE marker = '$MARKER'" 2>&1) || true
pg_ctl -D /tmp/scratch -m fast stop >/dev/null
if [ "$found" = 1 ]; then echo "restored $(basename "$latest"): marker found"; exit 0; fi
echo "restored $(basename "$latest"): marker not found"
tail -n 3 /tmp/restore.log
exit 1
"""


@component
class Postgis(Component):
    name: ClassVar[str] = "postgis"
    capability: ClassVar[str] = "relational-db"
    layer = layers.DATA
    summary: ClassVar[str] = (
        "PostgreSQL with PostGIS: relational and spatial data of the city, replicated by Patroni."
    )
    docs: ClassVar[str] = (
        "PostgreSQL 17 with PostGIS 3.5 (Zalando's Spilo image) for the applications' relational "
        "data and the GIS services' spatial data, run by Patroni: one primary and streaming "
        "standbys, with the Kubernetes API as consensus store. The leader holds the Endpoints of "
        "the `postgis` Service, so clients always reach the primary; when the primary fails, a "
        "standby no more than 1 MiB of WAL behind is promoted within Patroni's 30 s lease. "
        "Storage is derived from population (records per resident); the superuser, replication "
        "and REST API passwords are generated at deploy time and kept as Pulumi secrets."
    )
    real_run: ClassVar[str] = (
        "Runs unchanged: the local image (PostgreSQL 15, PostGIS 3.3 and Patroni 3.0 from Debian) "
        "runs the same Patroni configuration as Spilo. The first restore drill found 20-byte "
        "backups: the nightly Job started before the network policies admitted its pod, "
        "pg_dumpall was refused, and `pg_dumpall | gzip` reported gzip's success. The backup now "
        "waits for the server, fails when pg_dumpall fails, and renames a dump into place only "
        "when it is whole. With two replicas, deleting the primary's pod moves the Service to "
        "the promoted standby and the data stays (the real tier's failover test)."
    )
    images = {"main": SPILO}
    local_images = {"main": POSTGIS_LOCAL}
    Settings = StoreSettings
    sizing = (
        SizingRule(
            "replicas",
            Num(2),
            why="a primary and a streaming standby that Patroni promotes when the primary fails",
            scales_with="replicas",
        ),
        SizingRule(
            "storage_gi",
            GiB(20) + GiB(50) * city.population / 1_000_000,
            scales_with="size",
            unit="GiB",
        ),
    )
    ports = (Port("postgres", 5432), Port("patroni", PATRONI_API_PORT, exposed_to="self"))
    resources = Resources(cpu_millis=500, memory_mi=2048)
    secrets = (SecretSpec("credentials", ("password", "replication", "api")),)
    stateful: ClassVar[bool] = True
    # Patroni's consensus: the leader and config Endpoints, and its members' pod annotations.
    api_access = (
        ApiAccess(("",), ("endpoints",), ("get", "list", "watch", "create", "update", "patch")),
        ApiAccess(("",), ("pods",), ("get", "list", "watch", "update", "patch")),
    )
    # pg_dumpall of the server's own major version, from its own image.
    backup = Backup(
        SPILO,
        POSTGIS_BACKUP,
        (("PGPASSWORD", "credentials", "password"),),
        drill=RestoreDrill(
            POSTGIS_DRILL_MARK,
            POSTGIS_DRILL_RESTORE,
            (("PGPASSWORD", "credentials", "password"),),
            run_as=POSTGRES_UID,
            writable=("/tmp", "/var/run/postgresql"),
            memory_mi=1024,
        ),
    )
    checks = (
        Check(
            "answers SELECT postgis_full_version() with the generated credentials",
            POSTGIS_VERSION,
            (("PGPASSWORD", "credentials", "password"),),
        ),
        Check("refuses a wrong password", POSTGRES_WRONG_PASSWORD),
    )
    workload = Workload(
        Probe("patroni", "/readiness"),
        liveness=Probe("patroni", "/liveness"),
        kind="StatefulSet",
        replicas="replicas",
        storage="storage_gi",
        data_path=POSTGIS_DATA,
        writable=("/tmp", "/var/run/postgresql"),
        run_as=POSTGRES_UID,
        run_as_group=POSTGRES_GID,
        config_path=PATRONI_CONFIG_PATH,
        command=("patroni",),
        args=(f"{PATRONI_CONFIG_PATH}/patroni.yml",),
    )

    def values(self, build: Any) -> Mapping[str, Any]:
        config = patroni_config(selector_labels(build.plan.slug, build.component.name), self.name)
        return {
            "config": {
                "patroni.yml": json.dumps(config, sort_keys=True, indent=1),
                "post-bootstrap.sh": POSTGIS_POST_BOOTSTRAP,
            },
            # Patroni points the Service at the primary (its Endpoints); a selector would
            # send clients to standbys too.
            "service_selector": False,
            "field_env": [
                {"name": "PATRONI_NAME", "field": "metadata.name"},
                {"name": "PATRONI_KUBERNETES_NAMESPACE", "field": "metadata.namespace"},
                {"name": "PATRONI_KUBERNETES_POD_IP", "field": "status.podIP"},
            ],
            "env": {
                "PGDATA": f"{POSTGIS_DATA}/pgdata",
                "PATRONI_POSTGRESQL_CONNECT_ADDRESS": "$(PATRONI_KUBERNETES_POD_IP):5432",
                "PATRONI_RESTAPI_CONNECT_ADDRESS": (
                    f"$(PATRONI_KUBERNETES_POD_IP):{PATRONI_API_PORT}"
                ),
                "PATRONI_RESTAPI_USERNAME": "patroni",
            },
            "secret_env": [
                {"name": name, "secret": "postgis-credentials", "key": key}
                for name, key in (
                    ("PATRONI_SUPERUSER_PASSWORD", "password"),
                    ("PATRONI_REPLICATION_PASSWORD", "replication"),
                    ("PATRONI_RESTAPI_PASSWORD", "api"),
                )
            ],
        }


# Debian's VictoriaMetrics single-node (v1.79, upstream's image: v1.115), with upstream's binary
# path linked so a `command` written for the upstream image runs too.
VICTORIA_METRICS_LOCAL = LocalImage(
    version="v1.79.5",
    source="debian:bookworm victoria-metrics",
    debian=("victoria-metrics",),
    script="ln -s /usr/bin/victoria-metrics /victoria-metrics-prod\nmkdir -p /storage\n",
    entrypoint=("/usr/bin/victoria-metrics",),
    check="victoria-metrics -help 2>&1 | grep -q -- -storageDataPath",
)


# A sample of `citykit_verify_marker` (metric names cannot hold `-`), labelled with the run,
# imported in Prometheus text format, flushed, then exported back. The single node's API paths:
# verify runs only where the store is real, which is the single node of the `local` environment.
TIMESERIES_ROUND_TRIP = r"""
set -eu
base="http://$TARGET:$PORT_HTTP"
series='citykit_verify_marker{run="'"$RUN"'"}'
curl -fsS --max-time 10 --data-binary "$series 1" "$base/api/v1/import/prometheus"
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  curl -fsS --max-time 10 "$base/internal/force_flush" >/dev/null 2>&1 || true
  curl -fsS --max-time 10 -G -o /tmp/export "$base/api/v1/export" \
    --data-urlencode "match[]=$series"
  if grep -q "$RUN" /tmp/export; then
    echo "written and read back ($attempt attempt(s))"
    exit 0
  fi
  sleep 1
done
echo "the sample was not read back within 10 s"
exit 1
"""

# The component's Service is the read path in both forms (the single node, or vmselect), so
# the backup exports from it: by the single node's path first, then by vmselect's (tenant 0),
# which answers only in the cluster form. The selector is sent URL-encoded (curl would read its
# brackets and braces as a glob).
TIMESERIES_BACKUP = r"""
set -eu
export_from() {
  curl -fsS -G "http://$TARGET:8428$1/api/v1/export/native" \
    --data-urlencode 'match[]={__name__!=""}' -o /backup/latest.native
}
export_from "" || export_from /select/0/prometheus
"""

VM_CLUSTER = "v1.115.0-cluster"
# Every role of the cluster serves HTTP (API, /health, /metrics) on the single node's port, the
# one the component declares: clients, Prometheus (the container port named `http`) and the
# NetworkPolicies derived from the declaration reach each role there. vmstorage's own ports
# (upstream's defaults) are used by vminsert and vmselect only, within the component.
VM_STORAGE_PORTS = {"vminsert": 8400, "vmselect": 8401}
VM_STORAGE_ARGS = ("-storageDataPath=/storage", "-retentionPeriod=1y")  # single node, vmstorage
# Tells the cluster's roles apart (their selectors, so their disruption budgets and spread);
# `app.kubernetes.io/component` stays the component's name, which deployment status reads.
VM_ROLE_LABEL = ROLE_LABEL
VM_REPLICATION = 2  # copies vminsert writes of each sample (upstream's -replicationFactor)


@component
class VictoriaMetrics(Component):
    name: ClassVar[str] = "victoria-metrics"
    capability: ClassVar[str] = "timeseries-db"
    layer = layers.DATA
    summary: ClassVar[str] = "Time-series store for sensor readings and city indicators."
    docs: ClassVar[str] = (
        "VictoriaMetrics: ingests device telemetry at the city's peak message rate and answers "
        "PromQL. Where `replicas` is one (dev, local) it is the single-node version. From two, "
        "upstream's cluster version: `replicas` vmstorage nodes (a StatefulSet with a claim "
        "each), and as many vminsert and vmselect pods (Deployments) that name every storage "
        "node by its stable DNS name. vminsert writes each sample to two nodes "
        "(`-replicationFactor=2`), vmselect deduplicates the copies "
        "(`-dedup.minScrapeInterval=1ms`), so a storage node may be lost or drained. The "
        "Service `victoria-metrics` is the read path in both forms (in the cluster: vmselect, "
        "`/select/0/prometheus/...`); in the cluster the write path is the Service "
        "`victoria-metrics-insert` (`/insert/0/prometheus/...`). Every role serves HTTP on "
        "8428. Storage is derived from the message rate and the copies kept."
    )
    images = {
        "main": Image("docker.io/victoriametrics/victoria-metrics", "v1.115.0"),
        "storage": Image("docker.io/victoriametrics/vmstorage", VM_CLUSTER),
        "insert": Image("docker.io/victoriametrics/vminsert", VM_CLUSTER),
        "select": Image("docker.io/victoriametrics/vmselect", VM_CLUSTER),
    }
    local_images = {"main": VICTORIA_METRICS_LOCAL}
    Settings = StoreSettings
    sizing = (
        SizingRule(
            "replicas",
            max_of(2, city.peak_messages_per_second / msg_per_s(100_000)),
            why="storage nodes (and vminsert and vmselect pods) of the cluster version: a "
            "replicated pair, more for a heavy message rate; a single node where the "
            "environment scales it to one",
            scales_with="replicas",
            maximum=64,
        ),
        SizingRule(
            "storage_gi",
            city.peak_messages_per_second
            * days(365)
            * B(1)
            * min_of(VM_REPLICATION, figure("replicas"))
            / figure("replicas")
            + GiB(10),
            why="a sample per message, compressed to about a byte, for the retention period, "
            "in as many copies as are kept, shared by the storage nodes",
            scales_with="size",
            unit="GiB",
        ),
    )
    ports = (Port("http", 8428),)
    resources = Resources(cpu_millis=500, memory_mi=1024)
    stateful: ClassVar[bool] = True
    metrics = Metrics("http")
    backup = Backup(Image("docker.io/curlimages/curl", "8.13.0"), TIMESERIES_BACKUP)
    checks = (Check("a sample written is read back", TIMESERIES_ROUND_TRIP),)
    workload = Workload(
        Probe("http", "/health"),
        kind="StatefulSet",
        replicas="replicas",
        storage="storage_gi",
        data_path="/storage",
        args=VM_STORAGE_ARGS,
    )

    def standard_workload(self, build: Any) -> bool:
        nodes: int = build.component.size("replicas")
        return nodes < 2

    def values(self, build: Any) -> Mapping[str, Any]:
        if self.standard_workload(build):
            return {}
        plan, me = build.plan, build.component
        nodes, storage = me.size("replicas"), f"{me.name}-storage"
        # vmstorage's own Service is headless: one stable name per pod.
        hosts = [f"{storage}-{i}.{service_host(storage, me.namespace)}" for i in range(nodes)]
        http = [f"-httpListenAddr=:{self.ports[0].port}"]
        roles = (
            (
                "storage",
                "vmstorage",
                "StatefulSet",
                storage,
                True,
                [
                    *VM_STORAGE_ARGS,
                    *http,
                    *(f"-{name}Addr=:{port}" for name, port in VM_STORAGE_PORTS.items()),
                ],
            ),
            (
                "insert",
                "vminsert",
                "Deployment",
                f"{me.name}-insert",
                False,
                [
                    *http,
                    f"-replicationFactor={VM_REPLICATION}",
                    *(f"-storageNode={host}:{VM_STORAGE_PORTS['vminsert']}" for host in hosts),
                ],
            ),
            (
                "select",
                "vmselect",
                "Deployment",
                me.name,
                False,
                [
                    *http,
                    "-dedup.minScrapeInterval=1ms",
                    *(f"-storageNode={host}:{VM_STORAGE_PORTS['vmselect']}" for host in hosts),
                ],
            ),
        )
        return {
            "cluster": [
                {
                    "name": f"{me.name}-{key}",
                    "container": role,
                    "kind": kind,
                    "service": service,
                    "headless": headless,
                    "image": me.images[key],
                    "args": args,
                    "labels": {VM_ROLE_LABEL: role},
                    "selector": selector_labels(plan.slug, me.name) | {VM_ROLE_LABEL: role},
                    "ports": {"http": self.ports[0].port, **(VM_STORAGE_PORTS if headless else {})},
                    "replicas": nodes,
                    "data": headless,
                }
                for key, role, kind, service, headless, args in roles
            ]
        }


class StreamSettings(ComponentSettings):
    replicas: int | None = Field(
        None, ge=1, le=256, description="Task managers (default: derived)."
    )


@component
class Flink(Component):
    name: ClassVar[str] = "flink"
    capability: ClassVar[str] = "stream-processing"
    layer = layers.DATA
    summary: ClassVar[str] = (
        "Apache Flink session cluster: stream processing of device and event data."
    )
    docs: ClassVar[str] = (
        "A Flink session cluster (job manager and task managers in one Deployment of task "
        "slots) that city jobs are submitted to. Task managers are derived from the peak "
        "message rate (about 5,000 msg/s per task manager)."
    )
    requires = ("message-broker",)
    images = {"main": Image("docker.io/library/flink", "1.20.1-java17")}
    Settings = StreamSettings
    sizing = (
        SizingRule(
            "replicas",
            max_of(2, city.peak_messages_per_second / msg_per_s(5_000)),
            why="task managers for throughput, a pair at least",
            scales_with="replicas",
            maximum=256,
        ),
    )
    ports = (Port("ui", 8081), Port("rpc", 6123))
    resources = Resources(cpu_millis=1000, memory_mi=2048)
    workload = Workload(
        Probe("ui", "/overview"),
        replicas="replicas",
        args=("jobmanager",),
        run_as=9999,
        writable=("/tmp", "/opt/flink/log", "/opt/flink/conf"),
    )

    def values(self, build: Any) -> Mapping[str, Any]:
        broker = build.plan.by_capability("message-broker")
        return {
            "env": {
                "FLINK_PROPERTIES": (
                    "jobmanager.rpc.address: flink\ntaskmanager.numberOfTaskSlots: 4"
                ),
                "CITY_BROKER": service_host(broker.name, broker.namespace) if broker else "",
            }
        }


class CatalogSettings(ComponentSettings):
    replicas: int | None = Field(
        None, ge=1, le=16, description="Catalog servers (default: derived)."
    )


def _endpoint(build: Any, capability: str) -> tuple[str, int] | None:
    """Host and first port of the component providing a capability, if the plan has one."""
    peer = build.plan.by_capability(capability)
    if peer is None or not peer.cls.ports:
        return None
    return service_host(peer.name, peer.namespace), peer.cls.ports[0].port


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
    secrets = (SecretSpec("db", ("password",), same_as="relational-db:credentials"),)
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

    def values(self, build: Any) -> Mapping[str, Any]:
        plan = build.plan
        db = _endpoint(build, "relational-db")
        jdbc = f"jdbc:postgresql://{db[0]}:{db[1]}/city" if db else ""
        catalogs: list[dict[str, Any]] = []
        if db:
            catalogs.append(
                {
                    "name": "city-db",
                    "type": "relational",
                    "provider": "jdbc-postgresql",
                    "properties": {
                        "jdbc-url": jdbc,
                        "jdbc-driver": "org.postgresql.Driver",
                        "jdbc-database": "city",
                        "jdbc-user": "postgres",
                    },
                }
            )
        lake = _endpoint(build, "data-lake")
        if lake:
            catalogs.append(
                {
                    "name": "city-lake",
                    "type": "fileset",
                    "provider": "fileset",
                    "properties": {
                        "filesystem-providers": "s3",
                        "location": f"s3a://{plan.slug}-lake/",
                        "s3-endpoint": f"http://{lake[0]}:{lake[1]}",
                    },
                }
            )
        # Gravitino catalogs Kafka topics only: a broker that speaks the Kafka protocol (declares
        # a `kafka` port) gets a messaging catalog; NATS or RabbitMQ have no Gravitino provider.
        broker = plan.by_capability("message-broker")
        kafka = [p for p in broker.cls.ports if p.name == "kafka"] if broker else []
        if broker is not None and kafka:
            catalogs.append(
                {
                    "name": "city-streams",
                    "type": "messaging",
                    "provider": "kafka",
                    "properties": {
                        "bootstrap.servers": (
                            f"{service_host(broker.name, broker.namespace)}:{kafka[0].port}"
                        )
                    },
                }
            )
        metalake = {"metalake": plan.slug, "comment": plan.profile.city.name, "catalogs": catalogs}
        return {
            "config": {
                "catalogs.json": json.dumps(metalake, sort_keys=True, indent=1, ensure_ascii=False)
            },
            "env": {
                "GRAVITINO_ENTITY_STORE": "relational",
                "GRAVITINO_ENTITY_STORE_RELATIONAL": "JDBCBackend",
                "GRAVITINO_ENTITY_STORE_RELATIONAL_JDBC_URL": jdbc,
                "GRAVITINO_ENTITY_STORE_RELATIONAL_JDBC_DRIVER": "org.postgresql.Driver",
                "GRAVITINO_ENTITY_STORE_RELATIONAL_JDBC_USER": "postgres",
                "CITY_METALAKE": plan.slug,
            },
            "secret_env": [
                {
                    "name": "GRAVITINO_ENTITY_STORE_RELATIONAL_JDBC_PASSWORD",
                    "secret": "gravitino-db",
                    "key": "password",
                }
            ],
        }
