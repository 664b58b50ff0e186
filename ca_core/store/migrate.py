"""Bring a database to the current schema with Alembic (`ceg db migrate`, and at start)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def migrate_sync(url: str, revision: str = "head", progress: Callable[[str], None] | None = None) -> None:
    """Upgrade to `revision`; runs its own event loop, so call it outside one (or in a thread)."""
    config = alembic_config(url)
    if progress is not None:
        config.attributes["progress"] = progress
    command.upgrade(config, revision)


async def migrate(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(migrate_sync, url, revision)
