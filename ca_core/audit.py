"""Append-only, hash-chained audit log.

Every entry's hash is SHA-256 over the previous entry's hash and a canonical JSON of the
entry (its sequence number included), so editing, removing or reordering any stored row
breaks the chain at that row. `verify_chain` walks the log and names the first bad row.

Entries are appended inside the same database transaction as the change they record
(store/database.py), so the log and the data cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ca_core.errors import BadRequest

GENESIS_HASH = "0" * 64


class Action:
    """Audit action names. Certificate lifecycle ones also feed the certificate-events API."""

    CA_CREATED = "ca.created"
    CA_CSR_EXPORTED = "ca.csr_exported"
    CA_CERT_IMPORTED = "ca.cert_imported"
    CA_CERT_REFUSED = "ca.cert_refused"  # an operator's certificate for a CA, not accepted
    CA_DELETED = "ca.deleted"
    CA_SERVICES_CHANGED = "ca.services_changed"
    CERT_ISSUED = "certificate.issued"
    CERT_REFUSED = "certificate.refused"
    CERT_REVOKED = "certificate.revoked"
    CERT_HELD = "certificate.held"
    CERT_UNHELD = "certificate.unheld"
    CERT_EXPIRED = "certificate.expired"

    CERTIFICATE_EVENTS = (CERT_ISSUED, CERT_REVOKED, CERT_HELD, CERT_UNHELD, CERT_EXPIRED)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An entry before it is chained (no sequence number or hash yet)."""

    at: dt.datetime
    action: str
    actor: str
    ca_id: str | None = None
    serial: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChainedEntry:
    seq: int
    at: dt.datetime
    action: str
    actor: str
    ca_id: str | None
    serial: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


def _timestamp(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(
    prev_hash: str,
    seq: int,
    at: dt.datetime,
    action: str,
    actor: str,
    ca_id: str | None,
    serial: str | None,
    detail: dict[str, Any],
) -> str:
    """SHA-256 of the previous hash and the canonical JSON of [seq, at, action, actor, ca, serial, detail]."""
    return _hash(prev_hash, seq, at, action, actor, ca_id, serial, _canonical(detail))


def _hash(
    prev_hash: str,
    seq: int,
    at: dt.datetime,
    action: str,
    actor: str,
    ca_id: str | None,
    serial: str | None,
    detail_json: str,
) -> str:
    # The canonical JSON of a list is its items' canonical JSON joined by ",", so the detail,
    # already serialised once by chain(), is spliced in rather than serialised again.
    head = _canonical([seq, _timestamp(at), action, actor, ca_id, serial])
    body = f"{head[:-1]},{detail_json}]"
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


def chain(entries: Iterable[AuditEntry], last_seq: int, last_hash: str) -> list[ChainedEntry]:
    """Give each entry its sequence number and hash, continuing from the log's head."""
    out: list[ChainedEntry] = []
    seq, prev = last_seq, last_hash
    for e in entries:
        seq += 1
        # Round-trip detail through JSON so the hash covers exactly what the database keeps.
        detail_json = _canonical(e.detail)
        detail = json.loads(detail_json)
        h = _hash(prev, seq, e.at, e.action, e.actor, e.ca_id, e.serial, detail_json)
        out.append(ChainedEntry(seq, e.at, e.action, e.actor, e.ca_id, e.serial, detail, prev, h))
        prev = h
    return out


@dataclass(frozen=True, slots=True)
class ChainProblem:
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"audit entry {self.seq}: {self.problem}"


def verify_chain(
    rows: Iterable[ChainedEntry],
    head_seq: int | None = None,
    head_hash: str | None = None,
    anchors: Mapping[int, str] | None = None,
) -> list[ChainProblem]:
    """Check the stored log; returns the problems found (empty when intact), each naming a row.

    An edited row fails its own hash; a removed row leaves a gap in the sequence (the
    missing number is named); a reordered or renumbered row no longer hashes to its
    content (the sequence number is hashed) nor follows its predecessor. The head row
    catches rows removed from the end (the first missing number is named). A row edited
    *and* re-hashed is named through its successor, whose prev_hash no longer matches.

    Someone who can write the database can still cut the end off the log and move the
    head row back, or rewrite and re-hash the whole log. `anchors` ({seq: hash}, taken
    earlier with `ceg audit head` and kept outside the database) catch both: an anchored
    entry must still be there with the same hash.
    """
    problems: list[ChainProblem] = []
    seen_anchors: set[int] = set()
    expected_seq, prev = 1, GENESIS_HASH
    last_seq, last_hash = 0, GENESIS_HASH
    for row in rows:
        if row.seq != expected_seq:
            if row.seq > expected_seq:
                missing = (
                    f"{expected_seq}" if row.seq == expected_seq + 1 else f"{expected_seq}-{row.seq - 1}"
                )
                problems.append(
                    ChainProblem(expected_seq, f"missing: the log jumps to {row.seq} (removed {missing}?)")
                )
            else:
                problems.append(ChainProblem(row.seq, f"out of order after {expected_seq - 1} (renumbered?)"))
        if row.prev_hash != prev:
            problems.append(
                ChainProblem(
                    row.seq,
                    f"does not follow entry {last_seq} (an entry before it was edited, removed or reordered)",
                )
            )
        recomputed = entry_hash(
            row.prev_hash, row.seq, row.at, row.action, row.actor, row.ca_id, row.serial, row.detail
        )
        if recomputed != row.hash:
            problems.append(ChainProblem(row.seq, "content does not match its hash (edited or renumbered)"))
        if anchors and row.seq in anchors:
            seen_anchors.add(row.seq)
            if anchors[row.seq] != row.hash:
                problems.append(
                    ChainProblem(row.seq, "hash differs from the anchor kept for it (rewritten?)")
                )
        expected_seq, prev = row.seq + 1, row.hash
        last_seq, last_hash = row.seq, row.hash
    for seq in sorted(set(anchors or ()) - seen_anchors):
        problems.append(ChainProblem(seq, "an anchor was kept for this entry, and it is gone (truncated?)"))
    if head_seq is not None and (head_seq != last_seq or head_hash != last_hash):
        if head_seq > last_seq:
            problems.append(
                ChainProblem(
                    last_seq + 1,
                    f"missing: the log ends at {last_seq} but its head records {head_seq} (truncated?)",
                )
            )
        else:
            problems.append(
                ChainProblem(last_seq, f"the log's head records {head_seq} and another hash (head edited?)")
            )
    return problems


def parse_anchor(text: str) -> tuple[int, str]:
    """An anchor as `ceg audit head` prints it ("SEQ:HASH") -> (seq, hash)."""
    seq, _, digest = text.strip().partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise BadRequest(f"anchor {text[:80]!r}: expected SEQ:HASH as `ceg audit head` prints it")
    return int(seq), digest
