"""The peer of `bench/rest.py`: a bare FastAPI + asyncpg service doing the same SELECTs on the same PostgreSQL as
intake's two read routes, under uvicorn with the settings `povguard-serve` uses. No token, no masking, no audit,
no metrics: the floor the platform's request path is compared with.

    python bench/rest_peer.py --port 8199 --dsn postgresql://...
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import uvicorn
from fastapi import FastAPI, Response


def peer_app(dsn: str) -> FastAPI:
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=4, max_size=10)
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/v1/households/{household_id}")
    async def household(household_id: str) -> Response:
        assert pool is not None
        state = await pool.fetchval("SELECT state::text FROM intake.households WHERE household_id = $1",
                                    household_id)
        if state is None:
            return Response(status_code=404)
        return Response(state, media_type="application/json")

    @app.get("/v1/households")
    async def households(org: str, cursor: str = "", limit: int = 100) -> Response:
        assert pool is not None
        rows = await pool.fetch("""
            SELECT household_id, state::text FROM intake.households
            WHERE group_code LIKE $1 AND household_id > $2 ORDER BY household_id LIMIT $3""",
                                org + "%", cursor, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        after = f'"{rows[-1][0]}"' if more else "null"
        return Response('{"data":[' + ",".join(r[1] for r in rows) + '],"next_cursor":' + after + "}",
                        media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True)
    args = parser.parse_args()
    # the same uvicorn settings as povguard_platform.serve
    uvicorn.run(peer_app(args.dsn), host="127.0.0.1", port=args.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=10)


if __name__ == "__main__":
    main()
