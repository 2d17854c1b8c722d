"""What `citykit images list` shows: per component image, its upstream reference, whether it
has a local recipe, the local reference and version, whether that version differs from the
upstream tag (Debian ships older releases), and whether it is built and loaded."""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from citykit.contract.component import Component
from citykit.images import build

NOT_BUILT, BUILT, LOADED = "not built", "built", "loaded"


def rows(
    components: Iterable[type[Component]],
    upstream: Mapping[str, Mapping[str, str]] | None = None,
    loaded: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """One row per (component, image key), in the order given. `upstream` is the plan's resolved
    references (mirror applied) by component; `loaded` the node's references, None when no node
    runtime was reachable."""
    result: list[dict[str, Any]] = []
    for cls in components:
        refs = (upstream or {}).get(cls.name, {})
        for key in sorted(set(cls.images) | set(cls.local_images)):
            image = cls.images.get(key)
            recipe = cls.local_images.get(key)
            row: dict[str, Any] = {
                "component": cls.name,
                "layer": cls.layer.key,
                "image": key,
                "upstream": refs.get(key) or (image.ref(None) if image else None),
                "upstreamTag": image.tag if image else None,
                "recipe": recipe is not None,
                "localRef": None,
                "localVersion": None,
                "source": None,
                "differsFromUpstream": None,
                "state": None,
                "archive": None,
            }
            if recipe is not None:
                target = build.Target(cls.name, key, recipe, image)
                archive = build.archive_path(target)
                state = BUILT if archive.is_file() else NOT_BUILT
                if loaded is not None and target.ref in loaded:
                    state = LOADED
                row |= {
                    "localRef": target.ref,
                    "localVersion": recipe.version,
                    "source": recipe.source,
                    "differsFromUpstream": image is None or recipe.version != image.tag,
                    "state": state,
                    "archive": str(archive),
                }
            result.append(row)
    return result
