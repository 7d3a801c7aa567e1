"""Helpers every service's routes share: optimistic concurrency over HTTP (ETag = the aggregate's version,
If-Match = the version the client saw)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Response

from povguard_platform.problems import InvalidInput


def expected_version(
    if_match: Annotated[str | None, Header(description="the ETag of the version you saw; a stale one gets 409")] = None,
) -> int | None:
    if if_match is None:
        return None
    try:
        return int(if_match.strip('W/"'))
    except ValueError:
        raise InvalidInput('If-Match must be the ETag of a version, e.g. "3"') from None


ExpectedVersion = Annotated[int | None, Depends(expected_version)]


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'
