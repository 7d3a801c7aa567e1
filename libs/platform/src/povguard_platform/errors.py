"""Domain-level errors, free of HTTP: a rule broken by a command names the field and says why. The web edge turns
them into RFC 9457 problem details (422, 409, 404)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Violation:
    field: str  # dotted path in the command, e.g. members.2.id_number
    message: str
    code: str = "rule"


class RuleViolations(Exception):
    """A command broke one or more rules; nothing was written."""

    def __init__(self, violations: list[Violation], detail: str | None = None) -> None:
        self.violations = violations
        super().__init__(detail or "; ".join(f"{v.field}: {v.message}" for v in violations))


class DomainConflict(Exception):
    """The command conflicts with what is already recorded (e.g. a duplicate ID number)."""

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.extra = extra


class DomainNotFound(Exception):
    pass


class DomainForbidden(Exception):
    """The actor may not do this (role, org unit, segregation of duties); `code` says which rule refused it."""

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.extra = extra
