"""The one naming rule for locally built images: `citykit.local/<component>/<key>:<version>`.

`citykit.local` is a registry host that resolves nowhere, so a node can only have such an image
because `citykit images build` loaded it, never because something pulled it. Imports nothing from
citykit: the component contract uses it."""

from __future__ import annotations

import re

REGISTRY = "citykit.local"

_PATH_PART = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
_TAG_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def tag(version: str) -> str:
    """A version as an image tag: Debian's `+`, `~` and `:` are not allowed in tags (`_` is)."""
    text = _TAG_BAD.sub("_", version)[:128]
    if not text or text[0] in ".-":
        text = "_" + text[:127]
    return text


def local_ref(component: str, key: str, version: str) -> str:
    """The image reference of a component's locally built image `key` ("main", "broker")."""
    for part in (component, key):
        if not _PATH_PART.fullmatch(part):
            raise ValueError(f"{part!r} is not a valid image path component")
    return f"{REGISTRY}/{component}/{key}:{tag(version)}"


def is_local(ref: str) -> bool:
    return ref.startswith(REGISTRY + "/")
