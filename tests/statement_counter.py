"""Counts the statements one asyncpg connection sends, for tests that pin a path's round trips."""

from __future__ import annotations

import asyncio

import asyncpg


class Statements:
    """The statements one connection sends (asyncpg's query logger calls back soon after each)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.sent: list[str] = []
        conn.add_query_logger(lambda record: self.sent.append(record.query))

    async def reset(self) -> None:
        await asyncio.sleep(0)
        self.sent.clear()

    async def count(self) -> int:
        await asyncio.sleep(0)  # the logger is called soon after each statement, not during it
        return len(self.sent)
