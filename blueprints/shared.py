"""What several blueprints share, written once: settings models, the images their backups and
init containers run, and the copy of the city database's password its clients keep."""

from __future__ import annotations

from pydantic import Field

from citykit.contract.component import ComponentSettings
from citykit.contract.component import Image
from citykit.contract.component import SecretSpec

# The backups that copy over HTTP (definitions, exports, federation) and a replicated Loki's
# bucket: curl, and MinIO's client at the release the data lake ships.
CURL = Image("docker.io/curlimages/curl", "8.13.0")
MC = Image("quay.io/minio/mc", "RELEASE.2025-04-16T18-13-26Z")

# A client's own Secret `<client>-db` with the values of the relational store's credentials
# (Secrets are per namespace); the build context checks that the store declares them.
DATABASE_PASSWORD = SecretSpec("db", ("password",), same_as="relational-db:credentials")


class ReplicatedSettings(ComponentSettings):
    replicas: int | None = Field(None, ge=1, le=64, description="Replicas (default: derived).")


class StoreSettings(ComponentSettings):
    replicas: int | None = Field(
        None, ge=1, le=64, description="Server replicas (default: derived)."
    )
    storage_gi: int | None = Field(
        None, ge=1, le=1_000_000, description="Volume size per replica in GiB (default: derived)."
    )


class MessageBrokerSettings(ReplicatedSettings):
    partitions: int | None = Field(
        None, ge=1, le=10_000, description="Partitions per city topic (default: derived)."
    )
    storage_gi: int | None = Field(None, ge=1, description="Volume per broker in GiB.")


class RetentionSettings(ComponentSettings):
    storage_gi: int | None = Field(None, ge=1, description="Volume size in GiB (default: derived).")
    retention_days: int = Field(30, ge=1, le=3650, description="Days of data kept.")


class ScaledSettings(ComponentSettings):
    replicas: int | None = Field(None, ge=1, le=128, description="Replicas (default: derived).")
