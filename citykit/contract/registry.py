"""The explicit registry of components. `default` holds the shipped catalog (filled by
`citykit.catalog.load_catalog`); tests build fresh registries. A duplicate name or an
inconsistent declaration fails at registration, naming both."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from citykit.contract import sizing
from citykit.contract.component import Component
from citykit.errors import CitykitError


class RegistryError(CitykitError):
    """A component declaration is inconsistent: a bug in the catalog, not in the user's input."""


class Registry:
    def __init__(self, components: Iterable[type[Component]] = ()) -> None:
        self._by_name: dict[str, type[Component]] = {}
        for component in components:
            self.register(component)

    def register(self, component: type[Component]) -> type[Component]:
        """Add a component class; usable as a class decorator."""
        existing = self._by_name.get(component.name)
        if existing is not None:
            raise RegistryError(
                f"component name {component.name!r} is registered twice: "
                f"{existing.__module__}.{existing.__qualname__} and "
                f"{component.__module__}.{component.__qualname__}"
            )
        self._check(component)
        self._by_name[component.name] = component
        return component

    @staticmethod
    def _check(component: type[Component]) -> None:
        fields = component.Settings.model_fields
        try:
            sizing.order(component.sizing)
        except sizing.SizingError as error:
            raise RegistryError(f"component {component.name!r}: {error}") from error
        for rule in component.sizing:
            if rule.name not in fields:
                raise RegistryError(
                    f"component {component.name!r}: sizing rule {rule.name!r} has no settings "
                    f"field to override it; add `{rule.name}: int | None = None` to its Settings"
                )

    def get(self, name: str) -> type[Component]:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def components(self) -> list[type[Component]]:
        from citykit.contract import layers

        return sorted(self._by_name.values(), key=lambda c: (layers.index(c.layer), c.name))

    def capabilities(self) -> dict[str, list[type[Component]]]:
        """Capability -> its implementations, the default first."""
        result: dict[str, list[type[Component]]] = {}
        for component in self.components():
            result.setdefault(component.capability, []).append(component)
        for capability, implementations in result.items():
            implementations.sort(key=lambda c: (not c.default, c.name))
            defaults = [c.name for c in implementations if c.default]
            if len(defaults) != 1:
                raise RegistryError(
                    f"capability {capability!r} needs exactly one default implementation, "
                    f"has {defaults or 'none'}"
                )
            layer_keys = {c.layer.key for c in implementations}
            if len(layer_keys) != 1:
                raise RegistryError(
                    f"capability {capability!r} is split across layers {sorted(layer_keys)}"
                )
        return result

    def default_for(self, capability: str) -> type[Component]:
        return self.capabilities()[capability][0]

    def suggest(self, name: str) -> str | None:
        """The closest capability or component name, for "did you mean" hints."""
        candidates = sorted({*self._by_name, *(c.capability for c in self._by_name.values())})
        matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        return matches[0] if matches else None


default = Registry()


def component(cls: type[Component]) -> type[Component]:
    """Class decorator registering a shipped component in the default registry."""
    return default.register(cls)
