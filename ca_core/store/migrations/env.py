"""Alembic environment: runs migrations over the same async drivers the store uses."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from ca_core.store.tables import metadata

config = context.config


def _applied(ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
    progress = config.attributes.get("progress")
    if progress is not None:
        progress(step.up_revision_id)


def _run(connection: Any) -> None:
    context.configure(
        connection=connection, target_metadata=metadata, render_as_batch=True, on_version_apply=_applied
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(config.attributes["url"])
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


asyncio.run(_main())
