"""Every number that crosses a boundary (a request body, an uploaded cell, an event payload) is finite and bounded:
use these types, never a bare `float` or an unbounded `int`.

Money (元) is a `Decimal` with at most two places (分), never a float: sums and per-capita figures are exact
(0.1 + 0.2 is 0.3) and rounding is explicit: `fen()` rounds half up (四舍五入) to the fen.

In JSON an amount is a number, not a string, because
- events already stored hold floats: keeping numbers keeps their shape, so no event type needs a new version, and
  lax validation reads an old float back as the Decimal it prints as (0.1 → Decimal("0.1"));
- assessment compares a new result's JSON with the one last recorded: the same numbers, so no spurious change;
- it is exact: an amount is at most YUAN_MAX with two places, 12 significant digits (a Ratio at most 15), which a
  double's shortest form (what JSON writers and RFC 8785 print) gives back digit for digit; and it is far below 2**53,
  so the audit ledger's canonical JSON (RFC 8785 refuses integers beyond 2**53) records every event a service accepts.

Stored data passed the rules of its day. Decoding it under the `STORED` validation context reads a finite old value
that breaks today's places or bounds rounded to its places, instead of failing its household or plan forever."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any, Final

from pydantic import (
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

YUAN_MAX: Final = Decimal(1_000_000_000)  # 10亿元: beyond any one amount of a rural household's forms
RATIO_MAX: Final = YUAN_MAX * 100  # any amount over the smallest one (0.01), with four places: 15 digits, exact
COUNT_MAX: Final = 1_000_000  # people, votes, households, days: no county comes near it
FLOAT_MAX: Final = 1e12  # a measure that is not money (area, an indicator): finite and far below 2**53
CENT: Final = Decimal("0.01")
STORED: Final = {"stored": True}  # validation context for data read back from a store (events, read models)


def fen(value: Decimal | int) -> Decimal:
    """Rounded half up (四舍五入) to the fen."""
    return Decimal(value).quantize(CENT, ROUND_HALF_UP)


def _old_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return None
    try:
        old = Decimal(str(value))  # a float as it prints: what was written
    except InvalidOperation:
        return None
    return old if old.is_finite() else None


def _stored_leniency(places: int) -> WrapValidator:
    step = Decimal(1).scaleb(-places)

    def validate(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        try:
            return handler(value)
        except ValidationError:
            old = _old_decimal(value) if (info.context or {}).get("stored") else None
            if old is None:
                raise
            return old.quantize(step, ROUND_HALF_UP)

    return WrapValidator(validate)


_AS_NUMBER = PlainSerializer(float, return_type=float, when_used="json")  # exact: see the module's docstring

Yuan = Annotated[Decimal, Field(ge=0, le=YUAN_MAX, decimal_places=2, description="元"), _AS_NUMBER,
                 _stored_leniency(2)]
"""An amount on a form: 0 to YUAN_MAX yuan, at most two places. Services also hold it to the policy's bound
(`[bounds] max_line_amount`, `povguard_platform.policy.amount_violations`)."""

SignedYuan = Annotated[Decimal, Field(ge=-YUAN_MAX, le=YUAN_MAX, decimal_places=2, description="元"), _AS_NUMBER,
                       _stored_leniency(2)]
"""A computed amount that can be negative (家庭纯收入 after a business loss, 人均纯收入)."""

Ratio = Annotated[Decimal, Field(ge=-RATIO_MAX, le=RATIO_MAX, decimal_places=4), _AS_NUMBER, _stored_leniency(4)]
"""A share or a change (per_capita / previous - 1), to four places."""

Finite = Annotated[float, Field(ge=-FLOAT_MAX, le=FLOAT_MAX, allow_inf_nan=False)]
"""A measure that is neither money nor a count: finite, bounded."""

Count = Annotated[int, Field(ge=0, le=COUNT_MAX)]
"""People, votes, households, days."""

Year = Annotated[int, Field(ge=1900, le=2200)]

Position = Annotated[int, Field(ge=0, le=2**53 - 1)]
"""A position or a size in a log (the audit ledger's tree): any that a JSON number holds exactly."""
