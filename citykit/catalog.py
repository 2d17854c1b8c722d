"""The shipped catalog: every module under `blueprints/` imported once, each registering its
components in the default registry (`@component`). Above the blueprints in the layers, which the
registry itself is not: the blueprints import the registry, not the other way round."""

from __future__ import annotations

import importlib
import pkgutil

from citykit import blueprints
from citykit.contract.registry import Registry
from citykit.contract.registry import default

_loaded = False


def load_catalog() -> Registry:
    """Import every module under the blueprints package once, filling the default registry."""
    global _loaded
    if not _loaded:
        for info in pkgutil.walk_packages(blueprints.__path__, prefix=blueprints.__name__ + "."):
            importlib.import_module(info.name)
        _loaded = True
    return default
