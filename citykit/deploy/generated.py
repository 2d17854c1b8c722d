"""The credentials generated at deploy time: which Secrets need values (annotated by the
generated-secrets pass), which share another's (a database client's password), filled once and
kept across runs, never rotated. The engine keeps them as one encrypted stack config value."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from citykit.compiler import Compiled
from citykit.conventions import GENERATE_ANNOTATION
from citykit.conventions import SAME_AS_ANNOTATION


def required_secrets(compiled: Compiled) -> dict[str, list[str]]:
    """'<namespace>/<name>' -> keys, for every Secret whose values are generated at deploy time."""
    needed: dict[str, list[str]] = {}
    for obj in compiled.objects():
        annotations = obj.get("metadata", {}).get("annotations") or {}
        if obj.get("kind") == "Secret" and GENERATE_ANNOTATION in annotations:
            key = f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
            needed[key] = [k for k in annotations[GENERATE_ANNOTATION].split(",") if k]
    return needed


def shared_secrets(compiled: Compiled) -> dict[str, str]:
    """'<namespace>/<name>' -> the secret whose values it shares (`SecretSpec.same_as`)."""
    shared: dict[str, str] = {}
    for obj in compiled.objects():
        annotations = obj.get("metadata", {}).get("annotations") or {}
        if obj.get("kind") == "Secret" and SAME_AS_ANNOTATION in annotations:
            name = f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
            shared[name] = annotations[SAME_AS_ANNOTATION]
    return shared


def fill_generated(
    existing: Mapping[str, Mapping[str, str]],
    needed: Mapping[str, list[str]],
    shared: Mapping[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """Existing values kept (a re-run never rotates a password), missing ones generated; a
    secret that shares another's values (a database client's password) copies them."""
    result: dict[str, dict[str, str]] = {}
    for secret, keys in sorted(needed.items()):
        values = dict(existing.get(secret, {}))
        for key in keys:
            values.setdefault(key, secrets.token_urlsafe(24))
        result[secret] = {k: values[k] for k in keys}
    for secret, source in sorted((shared or {}).items()):
        if secret in result and source in result:
            for key in result[secret]:
                if key in result[source]:
                    result[secret][key] = result[source][key]
    return result
