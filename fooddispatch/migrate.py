"""Plain-SQL migrations, one folder per package: `<package>/migrations/NNNN_name.sql`.

All files are applied in package order, then by number, each in its own
transaction, while one session-level advisory lock is held, so two processes
starting together never race. Applied files are recorded with a checksum; an
applied file whose text later changes is an error (write a new migration).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

# Order matters only where one package's SQL refers to another's objects;
# packages do not share tables, so this is mostly cosmetic.
PACKAGES = ("kernel", "fooddispatch", "geo", "catalog", "payments", "orders", "tracking", "dispatch", "memberships")
LOCK_ID = 0x0F00D_D15  # an arbitrary constant advisory-lock key for migrations
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    package: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(packages: tuple[str, ...] = PACKAGES) -> list[Migration]:
    found: list[Migration] = []
    for package in packages:
        try:
            folder = resources.files(package) / "migrations"
        except ModuleNotFoundError:
            continue
        if not folder.is_dir():
            continue
        files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
        seen: set[int] = set()
        for file in files:
            match = _NAME.match(file.name)
            if not match:
                raise MigrationError(f"{package}/migrations/{file.name}: name must be NNNN_name.sql")
            version = int(match.group(1))
            if version in seen:
                raise MigrationError(f"{package}/migrations: two files numbered {version:04d}")
            seen.add(version)
            found.append(Migration(package, version, match.group(2), file.read_text()))
    return found


async def apply_migrations(conn: asyncpg.Connection, migrations: list[Migration] | None = None) -> list[str]:
    """Apply what is new; returns the names applied (empty when up to date)."""
    migrations = discover() if migrations is None else migrations
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_ID)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   package    text        NOT NULL,
                   version    integer     NOT NULL,
                   name       text        NOT NULL,
                   checksum   text        NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (package, version))"""
        )
        rows = await conn.fetch("SELECT package, version, name, checksum FROM schema_migrations")
        done = {(r["package"], r["version"]): r for r in rows}
        for migration in migrations:
            label = f"{migration.package}/{migration.version:04d}_{migration.name}"
            previous = done.get((migration.package, migration.version))
            if previous is not None:
                if previous["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"{label}.sql changed after it was applied (checksum mismatch); "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (package, version, name, checksum) VALUES ($1, $2, $3, $4)",
                    migration.package,
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(label)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_ID)
    return applied_now
