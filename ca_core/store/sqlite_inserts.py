"""One group commit of inserts and audit entries on SQLite, with the standard sqlite3 module.

The same transaction as Database's SQLAlchemy path (database.py), run as one call in
the writer thread of the direct connection (state_sqlite.py), inside its BEGIN
IMMEDIATE ... COMMIT: refuse the items whose CA is no longer active, insert every other
item's rows (one executemany per table), then append the audit entries to the hash
chain and move the chain's head. Values pass through each column's SQLAlchemy bind
processor for the database's dialect, so a row written here is the row SQLAlchemy
would have written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.engine import Dialect

from ca_core.audit import GENESIS_HASH, AuditEntry, ChainedEntry, chain
from ca_core.store import tables as t

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class InsertBatch:
    """One caller's part of the batch (Database._Pending without its future)."""

    rows: Sequence[tuple[Table, dict[str, Any]]]
    audit: Sequence[AuditEntry]
    active_ca: str | None = None


def commit_inserts(
    conn: sqlite3.Connection, items: Sequence[InsertBatch], dialect: Dialect
) -> dict[int, str]:
    """Write the items; returns {index of a refused item: its CA}, those items written not at all."""
    wanted = sorted({i.active_ca for i in items if i.active_ca})
    inactive: set[str] = set()
    if wanted:
        marks = ", ".join("?" * len(wanted))
        active = {
            ca
            for ca, state in conn.execute(f"SELECT id, state FROM cas WHERE id IN ({marks})", wanted)
            if state == "active"
        }
        inactive = set(wanted) - active
    refused: dict[int, str] = {}
    tables: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
    entries: list[AuditEntry] = []
    for index, item in enumerate(items):
        if item.active_ca in inactive:
            refused[index] = item.active_ca or ""
            continue
        for table, row in item.rows:
            tables.setdefault(table.name, (table, []))[1].append(row)
        entries.extend(item.audit)
    for table, rows in tables.values():
        insert_rows(conn, table, rows, dialect)
    if entries:
        head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        last_seq, last_hash = (int(head[0]), head[1]) if head else (0, GENESIS_HASH)
        chained = chain(entries, last_seq, last_hash)
        insert_rows(conn, t.audit_log, [audit_row(c) for c in chained], dialect)
        new_head = (chained[-1].seq, chained[-1].hash)
        if head is None:
            conn.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)", new_head)
        else:
            conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", new_head)
    return refused


def audit_row(entry: ChainedEntry) -> dict[str, Any]:
    """The audit_log row of a chained entry (both commit paths write it)."""
    return {
        "seq": entry.seq,
        "at": entry.at,
        "action": entry.action,
        "actor": entry.actor,
        "ca_id": entry.ca_id,
        "serial": entry.serial,
        "detail": entry.detail,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def insert_rows(conn: sqlite3.Connection, table: Table, rows: list[dict[str, Any]], dialect: Dialect) -> None:
    """INSERT the rows (dicts by column name, as for SQLAlchemy's insert()); columns a row
    leaves out get the column's scalar default, like SQLAlchemy's executemany."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    names += [c.name for c in table.columns if c.name not in names and _scalar_default(c) is not None]
    columns = [table.c[name] for name in names]
    processors: list[_Processor] = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    defaults = [_scalar_default(c) for c in columns]
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    conn.executemany(
        sql,
        [
            tuple(
                _bound(row.get(name, default), processor)
                for name, processor, default in zip(names, processors, defaults, strict=True)
            )
            for row in rows
        ],
    )


def _scalar_default(column: Column[Any]) -> Any:
    default = column.default
    return getattr(default, "arg", None) if getattr(default, "is_scalar", False) else None


def _bound(value: Any, processor: _Processor) -> Any:
    return processor(value) if processor is not None else value
