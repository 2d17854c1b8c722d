"""The exception hierarchy. Every error a user can cause is a CitykitError; the CLI prints it
without a traceback and exits with its exit code (2 for bad input, 1 for a failed operation)."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located by file and dotted path."""

    path: str
    message: str
    file: str = ""
    hint: str = ""

    def render(self) -> str:
        where = ": ".join(part for part in (self.file, self.path) if part)
        text = f"{where}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class CitykitError(Exception):
    """Base of every error citykit reports to a user."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def lines(self) -> list[str]:
        text = self.message + (f"\nhint: {self.hint}" if self.hint else "")
        return text.splitlines()


class InputError(CitykitError):
    """The user's input (profile, environment, flags) is wrong: exit code 2."""

    exit_code = 2


@dataclass
class ValidationFailed(InputError):
    """Every problem found in one input, collected before failing once."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        count = len(self.problems)
        InputError.__init__(self, f"{count} problem{'s' if count != 1 else ''} found")

    def lines(self) -> list[str]:
        return [problem.render() for problem in self.problems] + [self.message]


class GraphError(InputError):
    """The component graph is inconsistent: a missing dependency, a conflict or a cycle."""


class ToolMissing(CitykitError):
    """A binary citykit needs (pulumi, kube-apiserver, kind, …) is not installed."""

    exit_code = 2


class OperationFailed(CitykitError):
    """A deployment or cluster operation failed after it started: exit code 1."""

    exit_code = 1
