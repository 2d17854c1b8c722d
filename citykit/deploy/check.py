"""One row of `citykit doctor`: what is checked, whether it is there, what it is needed for
(only what `dev` needs decides the exit code) and the command that fixes it."""

from __future__ import annotations

from dataclasses import dataclass

TOOLS_HINT = "citykit tools install (or make tools)"


@dataclass(frozen=True)
class Check:
    check: str
    ok: bool
    detail: str
    needed_for: str
    hint: str = ""

    @property
    def required(self) -> bool:
        return self.needed_for == "dev"

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "missing" if self.required else "warning"

    def view(self) -> dict[str, object]:
        return {
            "check": self.check,
            "status": self.status,
            "ok": self.ok,
            "required": self.required,
            "neededFor": self.needed_for,
            "detail": self.detail,
            "hint": self.hint,
        }
