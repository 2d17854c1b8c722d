"""Data layer (7.2), relational store: PostgreSQL with PostGIS, replicated by Patroni."""

from __future__ import annotations

import json
from typing import ClassVar

from citykit.blueprints.data.relational_db_patroni import CITY_DATABASE
from citykit.blueprints.data.relational_db_patroni import PATRONI_API_PORT
from citykit.blueprints.data.relational_db_patroni import PATRONI_CONFIG_PATH
from citykit.blueprints.data.relational_db_patroni import POSTGIS_DATA
from citykit.blueprints.data.relational_db_patroni import POSTGIS_LOCAL
from citykit.blueprints.data.relational_db_patroni import POSTGIS_POST_BOOTSTRAP
from citykit.blueprints.data.relational_db_patroni import POSTGRES_GID
from citykit.blueprints.data.relational_db_patroni import POSTGRES_PORT
from citykit.blueprints.data.relational_db_patroni import POSTGRES_UID
from citykit.blueprints.data.relational_db_patroni import SPILO
from citykit.blueprints.data.relational_db_patroni import patroni_config
from citykit.blueprints.shared import StoreSettings

from citykit.contract import layers
from citykit.contract.component import ApiAccess
from citykit.contract.component import Backup
from citykit.contract.component import Check
from citykit.contract.component import Component
from citykit.contract.component import FieldEnv
from citykit.contract.component import Port
from citykit.contract.component import Probe
from citykit.contract.component import Resources
from citykit.contract.component import RestoreDrill
from citykit.contract.component import Retention
from citykit.contract.component import SecretSpec
from citykit.contract.component import SizingRule
from citykit.contract.component import TemplateValues
from citykit.contract.component import Workload
from citykit.contract.registry import component
from citykit.contract.sizing import GiB
from citykit.contract.sizing import Num
from citykit.contract.sizing import city
from citykit.conventions import selector_labels
from citykit.objects.build import Build

# psql reads the password from PGPASSWORD (never the command line); the city database is the
# one Patroni's bootstrap creates.
CONNECT = f"host=$TARGET port=$PORT_POSTGRES user={CITY_DATABASE.user} dbname={CITY_DATABASE.name}"
POSTGIS_VERSION = f"""
set -eu
version=$(psql "{CONNECT} connect_timeout=10" \
  -Atc 'SELECT postgis_full_version()')
echo "$version" | grep -q 'POSTGIS="' && echo "$version" | cut -c1-100
"""
POSTGRES_WRONG_PASSWORD = f"""
if PGPASSWORD="citykit-verify-wrong-$RUN" psql \
    "{CONNECT} connect_timeout=10" \
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


POD_IP = "$(PATRONI_KUBERNETES_POD_IP)"  # the pod's IP, from its field (`field_env`)
# The superuser's password, as the backup, its drill and the check read it.
PASSWORD_ENV = (("PGPASSWORD", "credentials", "password"),)


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
    ports = (
        Port(CITY_DATABASE.port, POSTGRES_PORT),
        Port("patroni", PATRONI_API_PORT, exposed_to="self"),
    )
    resources = Resources(cpu_millis=500, memory_mi=2048)
    secrets = (SecretSpec("credentials", ("password", "replication", "api")),)
    database = CITY_DATABASE
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
        PASSWORD_ENV,
        keep=Retention("city-*.sql.gz", 14),
        drill=RestoreDrill(
            POSTGIS_DRILL_MARK,
            POSTGIS_DRILL_RESTORE,
            PASSWORD_ENV,
            run_as=POSTGRES_UID,
            writable=("/tmp", "/var/run/postgresql"),
            memory_mi=1024,
        ),
    )
    checks = (
        Check(
            "answers SELECT postgis_full_version() with the generated credentials",
            POSTGIS_VERSION,
            PASSWORD_ENV,
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

    def values(self, build: Build) -> TemplateValues:
        config = patroni_config(selector_labels(build.plan.slug, build.component.name), self.name)
        return TemplateValues(
            config={
                "patroni.yml": json.dumps(config, sort_keys=True, indent=1),
                "post-bootstrap.sh": POSTGIS_POST_BOOTSTRAP,
            },
            # Patroni points the Service at the primary (its Endpoints); a selector would
            # send clients to standbys too.
            service_selector=False,
            field_env=(
                FieldEnv("PATRONI_NAME", "metadata.name"),
                FieldEnv("PATRONI_KUBERNETES_NAMESPACE", "metadata.namespace"),
                FieldEnv("PATRONI_KUBERNETES_POD_IP", "status.podIP"),
            ),
            env={
                "PGDATA": f"{POSTGIS_DATA}/pgdata",
                "PATRONI_POSTGRESQL_CONNECT_ADDRESS": f"{POD_IP}:{POSTGRES_PORT}",
                "PATRONI_RESTAPI_CONNECT_ADDRESS": f"{POD_IP}:{PATRONI_API_PORT}",
                "PATRONI_RESTAPI_USERNAME": "patroni",
            },
            secret_env=(
                self.secret_env("PATRONI_SUPERUSER_PASSWORD", "credentials", "password"),
                self.secret_env("PATRONI_REPLICATION_PASSWORD", "credentials", "replication"),
                self.secret_env("PATRONI_RESTAPI_PASSWORD", "credentials", "api"),
            ),
        )
