"""One exception hierarchy for the whole project: every user-facing error is a `SignalsError`.

Each layer keeps its own error classes in its own `errors` module (`jobs/lake/errors.py`,
`jobs/serving/errors.py`, …); every class says whether a retry can help (`retryable`), so the CLI
can tell a user error (fix the input, exit 1) from a transient failure (run it again, exit 75).
"""

from __future__ import annotations


class SignalsError(Exception):
    """Base of every error the project raises on purpose; the CLI prints these without a traceback."""

    hint: str = ""
    # Whether running the same thing again, unchanged, can succeed: a store that was down, a
    # commit race lost. False for what the caller must fix first (a typo, a bad file).
    retryable: bool = False

    def __init__(self, message: str, *, details: list[str] | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])
        self.hint = hint or self.hint

    def render(self) -> str:
        """The message a person reads: the problem, one line per detail, then what to do."""
        lines = [self.message, *(f"  {d}" for d in self.details)]
        if self.hint:
            lines.append(f"  {self.hint}")
        return "\n".join(lines)


class UnknownSignalError(SignalsError):
    """A signal reference (`name@version`) or a feature service that no declaration names."""


class SchemaMismatchError(SignalsError):
    """A table whose columns or types do not match the contract it must obey."""
