"""Operational errors: something outside the code (a server, a port, a binary) is not as it should be.

The CLI prints them as one readable message and exits non-zero, never as a traceback.
"""


class OperationalError(Exception):
    """A problem an operator can fix: says which part, where we looked and what to do."""

    def __init__(self, part: str, problem: str, hint: str = "") -> None:
        self.part = part
        self.problem = problem
        self.hint = hint
        super().__init__(f"{part}: {problem}" + (f" — {hint}" if hint else ""))


class ContractError(ValueError):
    """Data that breaks a contract (an event, a topic list, a migration)."""
