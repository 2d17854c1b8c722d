"""Data layer (7.2), relational store: Patroni's configuration and the local image of
PostgreSQL, PostGIS and Patroni (the component is in relational_db.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from citykit.contract.component import Database
from citykit.contract.component import Image
from citykit.contract.component import LocalImage
from citykit.conventions import NAME_LABEL

# Patroni keeps one primary and streaming standbys, with the Kubernetes API as its consensus
# store: the leader holds the Endpoints object of the `postgis` Service (which has no selector),
# so clients always reach the primary, and a standby takes the Endpoints over when the primary's
# lease (ttl) runs out. The same configuration runs one instance (the replicas figure is 1) or
# several. Passwords come from the environment only (PATRONI_*_PASSWORD).
PATRONI_CONFIG_PATH = "/etc/patroni"
PATRONI_API_PORT = 8008
POSTGRES_PORT = 5432
POSTGIS_DATA = "/var/lib/postgresql/data"
# The database the store serves its clients (`Postgis.database`), logged into as the superuser.
CITY_DATABASE = Database(
    "city", user="postgres", port="postgres", jdbc="postgresql", driver="org.postgresql.Driver"
)
# Runs once, on the primary Patroni has just initialised, with a connection string: what the
# postgis image does on first start (the city database with the postgis extension).
CITY = CITY_DATABASE.name
POSTGIS_POST_BOOTSTRAP = f"""#!/bin/sh
set -eu
psql -v ON_ERROR_STOP=1 -d "$1" -c 'CREATE DATABASE {CITY}'
psql -v ON_ERROR_STOP=1 -d "$1 dbname={CITY}" -c 'CREATE EXTENSION IF NOT EXISTS postgis'
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
            "ports": [{"name": CITY_DATABASE.port, "port": POSTGRES_PORT}],
        },
        "bootstrap": {
            "dcs": {
                # A leader demotes itself when the API server (its DCS) does not answer within
                # retry_timeout. Patroni's 10 s demoted the staging primary on kind while a loaded
                # API server took longer (`Read timed out` … `demoting self because DCS is not
                # accessible`): clients saw the database refuse connections. 25 s rides that out;
                # the lease grows with it (Patroni wants loop_wait + 2 × retry_timeout <= ttl), so
                # a crashed primary is replaced within a minute. A primary that shuts down
                # cleanly (a deleted pod) hands over at once, as before.
                "ttl": 60,
                "loop_wait": 10,
                "retry_timeout": 25,
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
            "listen": f"0.0.0.0:{POSTGRES_PORT}",
            "data_dir": f"{POSTGIS_DATA}/pgdata",
            "pgpass": "/tmp/pgpass",
            # A new standby copies the primary at once (pg_basebackup's default waits for a
            # spread checkpoint: minutes).
            "basebackup": [{"checkpoint": "fast"}],
            "authentication": {
                "superuser": {"username": CITY_DATABASE.user},
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
