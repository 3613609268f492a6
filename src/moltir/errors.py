"""The one error type moltir raises on purpose, and the exit codes it maps to.

Anything else that escapes is a bug: the CLI prints one line and the journal path that
holds the traceback.
"""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
EXIT_STEP_FAILED: Final = 1  # a step failed: containment incomplete; message says which and how to resume
EXIT_USAGE: Final = 2  # usage or bad input; nothing changed
EXIT_ENV: Final = 3  # environment not ready: no keyring, openclaw not found, config read-only
EXIT_LOCKED: Final = 4  # another moltir run holds the lock
EXIT_VERIFY: Final = 5  # verification failed: the effect did not hold
EXIT_FLEET_INCOMPLETE: Final = 6  # fleet report: a host failed, was unreachable or did not report
EXIT_INTERRUPTED: Final = 130

EXIT_CODES: Final[dict[int, str]] = {
    EXIT_OK: "success",
    EXIT_STEP_FAILED: "a step failed (containment incomplete; the message says which and how to resume)",
    EXIT_USAGE: "usage or bad input (nothing changed)",
    EXIT_ENV: "environment not ready (no keyring backend, openclaw not found, config read-only)",
    EXIT_LOCKED: "another moltir run holds the lock",
    EXIT_VERIFY: "verification failed (the effect did not hold)",
    EXIT_FLEET_INCOMPLETE: "fleet report: a host failed, is not contained, was unreachable or did not report",
    EXIT_INTERRUPTED: "interrupted",
}


class MoltirError(Exception):
    """An expected failure: a one-line message, an optional hint (the fix) and an exit code."""

    def __init__(self, message: str, *, hint: str = "", exit_code: int = EXIT_STEP_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message

    def one_line(self) -> str:
        """Message and hint on one line, as shown to the user."""
        text = self.message.rstrip(".")
        return f"{text}. {self.hint}" if self.hint else text


def usage_error(message: str, hint: str = "") -> MoltirError:
    return MoltirError(message, hint=hint, exit_code=EXIT_USAGE)


def env_error(message: str, hint: str = "") -> MoltirError:
    return MoltirError(message, hint=hint, exit_code=EXIT_ENV)


def verify_error(message: str, hint: str = "") -> MoltirError:
    return MoltirError(message, hint=hint, exit_code=EXIT_VERIFY)
