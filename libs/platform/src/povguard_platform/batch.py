"""Many commands in one request, the way the field hands work over: a village's appraisal meeting covers many
households, a collector's tablet syncs a day of forms, a department answers a day of comparisons. Each item is its
own command with the same rules as one at a time, run in its own savepoint of one transaction: an item that breaks
a rule is reported with its problem details (fields named `body.items.<i>.…`) and leaves nothing behind; the
others are kept. A bug (any other exception) fails the whole request and nothing is written.

Two ways to run the items: `apply_each` gives each its own savepoint (for commands that write as they go); or a
service decides every item first (pure, nothing written yet) and writes all that was decided in one append, far
fewer round trips, reporting the refused ones through `failure`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_platform.problems import Problem, problem_of

T = TypeVar("T")
R = TypeVar("R")

MAX_ITEMS = 500


class ItemFailure(BaseModel):
    index: int = Field(description="position of the item in the request")
    id: str = Field(description="the item's case or household id")
    problem: Problem


class BatchResult(BaseModel, Generic[R]):
    recorded: int = Field(description="items applied")
    failed: list[ItemFailure] = Field(description="items refused, each with why; nothing of them was written")
    data: list[R] = Field(description="what each applied item produced, in request order")


async def apply_each(conn: AsyncConnection, items: Sequence[T], key: Callable[[T], str],
                     apply: Callable[[T], Awaitable[R]], field: str = "items") -> BatchResult[R]:
    """Apply every item in its own savepoint; collect the known failures as problem details."""
    done: list[R] = []
    failed: list[ItemFailure] = []
    for index, item in enumerate(items):
        try:
            async with conn.begin_nested():
                done.append(await apply(item))
        except Exception as exc:
            failed.append(failure(index, key(item), exc, field))
    return BatchResult[R](recorded=len(done), failed=failed, data=done)


def failure(index: int, key: str, exc: BaseException, field: str = "items") -> ItemFailure:
    """The item's failure as problem details; re-raises anything that is not a known domain or platform error."""
    problem = problem_of(exc, f"body.{field}.{index}")
    if problem is None:
        raise exc
    return ItemFailure(index=index, id=key, problem=problem)


def refused(exc: BaseException) -> bool:
    """A command refused by a rule (a known domain or platform error), as opposed to a bug."""
    return problem_of(exc) is not None
