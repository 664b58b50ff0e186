"""The `ceg` command (ARCHITECTURE.md section 5).

Subcommands work on the data dir directly (database and keys), whether or not a server
is running; they call the same services as the APIs. `--json` prints machine-readable
output; errors go to stderr with exit code 1 (2 for usage and configuration errors).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_core.errors import CegError
from ca_core.model import IssuanceRequest, KeyAlgorithm, RequestedExtension, Requester, RevocationReason
from ca_core.services import Services
from ca_core.store import CertificateQuery
from ca_core.x509.names import parse_dn, parse_san
from gateway.api.admin.common import ca_view
from gateway.config import Config, ConfigError, default_data_dir, load_config

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, Any]]
_COMMANDS: dict[str, Command] = {}


class UsageError(Exception):
    pass


def command(name: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        _COMMANDS[name] = fn
        return fn

    return register


# --- output --------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value
    return value


def emit(args: argparse.Namespace, data: Any, text: str | None = None) -> None:
    if args.json:
        print(json.dumps(_jsonable(data), indent=2))
    elif text is not None:
        print(text)
    else:
        print(json.dumps(_jsonable(data), indent=2))


class Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal or forced)."""

    def __init__(self, total: int, label: str, force: bool = False) -> None:
        self.total, self.label, self.done = max(total, 1), label, 0
        self.enabled = force or sys.stderr.isatty()

    def step(self, n: int = 1) -> None:
        self.done += n
        if self.enabled:
            filled = int(30 * self.done / self.total)
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


# --- services for a command ----------------------------------------------------------------


def load_with_overrides(data_dir: Path, overrides: dict[str, object]) -> Config:
    config = load_config(data_dir)
    if overrides:
        config = replace(config, server=replace(config.server, **overrides))  # type: ignore[arg-type]
    return config


async def _services(args: argparse.Namespace) -> Services:
    from gateway.assembly import open_gateway_services

    config = load_config(Path(args.data_dir))
    return await open_gateway_services(config, run_migrations=False)


async def _with_services(args: argparse.Namespace, fn: Callable[[Services], Awaitable[Any]]) -> Any:
    services = await _services(args)
    try:
        return await fn(services)
    finally:
        await services.close()


def _actor() -> str:
    return f"cli:{os.environ.get('USER', 'unknown')}"


# --- init / serve / db ----------------------------------------------------------------------


@command("init")
async def cmd_init(args: argparse.Namespace) -> None:
    from gateway.bootstrap import initialise

    try:
        result = await initialise(
            Path(args.data_dir),
            demo=args.demo,
            db_url=args.db,
            key_backend=args.key_backend,
            http_port=args.http_port,
            https_port=args.https_port,
            host=args.host,
        )
    except FileExistsError as exc:
        raise UsageError(str(exc)) from None
    where = Path(args.data_dir) / "demo.json" if args.demo else Path(args.data_dir)
    emit(args, result, f"initialised {args.data_dir}" + (f"; demo endpoints in {where}" if args.demo else ""))


@command("db migrate")
async def cmd_db_migrate(args: argparse.Namespace) -> None:
    from ca_core.store.migrate import migrate_sync

    config = load_config(Path(args.data_dir))
    progress = Progress(1, "migrating", force=False)

    def step(revision: str) -> None:
        progress.label = f"migrating to {revision}"
        progress.step()

    await asyncio.to_thread(migrate_sync, config.database.resolved_url(config.data_dir), "head", step)
    progress.close()
    emit(args, {"migrated": True}, "database is at the current schema")


# --- ca ---------------------------------------------------------------------------------------


def _services_arg(text: str | None) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()] if text else []


@command("ca create-root")
async def cmd_ca_create_root(args: argparse.Namespace) -> None:
    async def run(s: Services) -> Any:
        ca = await s.authority.create_root(
            args.id, args.subject, KeyAlgorithm(args.key_type), args.years, args.ocsp, _actor()
        )
        return ca_view(ca)

    view = await _with_services(args, run)
    emit(args, view, f"created root CA {view['id']} ({view['subject']}), valid until {view['not_after']}")


@command("ca create-issuing")
async def cmd_ca_create_issuing(args: argparse.Namespace) -> None:
    async def run(s: Services) -> Any:
        ca = await s.authority.create_issuing(
            args.id,
            args.parent,
            args.subject,
            KeyAlgorithm(args.key_type),
            _services_arg(args.services),
            args.ocsp,
            args.years,
            _actor(),
        )
        return ca_view(ca)

    view = await _with_services(args, run)
    emit(
        args, view, f"created issuing CA {view['id']} under {view['parent']}, valid until {view['not_after']}"
    )


@command("ca register-external-root")
async def cmd_ca_register_external_root(args: argparse.Namespace) -> None:
    der = _read_cert(Path(args.cert))

    async def run(s: Services) -> Any:
        return ca_view(await s.authority.register_external_root(args.id, der, _actor()))

    view = await _with_services(args, run)
    emit(args, view, f"registered external root {view['id']} ({view['subject']})")


@command("ca create-external-issuing")
async def cmd_ca_create_external_issuing(args: argparse.Namespace) -> None:
    async def run(s: Services) -> Any:
        ca = await s.authority.create_external_issuing(
            args.id,
            args.root,
            args.subject,
            KeyAlgorithm(args.key_type),
            _services_arg(args.services),
            args.ocsp,
            _actor(),
        )
        return ca_view(ca)

    view = await _with_services(args, run)
    emit(
        args,
        view,
        f"issuing CA {view['id']} is {view['state']}: export its CSR with 'ceg ca export-csr {view['id']}'",
    )


@command("ca export-csr")
async def cmd_ca_export_csr(args: argparse.Namespace) -> None:
    async def run(s: Services) -> bytes:
        return await s.authority.export_csr(args.id, _actor())

    der = await _with_services(args, run)
    pem = x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM)
    if args.out:
        Path(args.out).write_bytes(pem if not args.der else der)
        emit(args, {"written": args.out}, f"wrote {args.out}")
    else:
        sys.stdout.write(pem.decode())


@command("ca import-cert")
async def cmd_ca_import_cert(args: argparse.Namespace) -> None:
    der = _read_cert(Path(args.cert))

    async def run(s: Services) -> Any:
        return ca_view(await s.authority.import_certificate(args.id, der, _actor()))

    view = await _with_services(args, run)
    emit(args, view, f"CA {view['id']} is {view['state']}")


@command("ca list")
async def cmd_ca_list(args: argparse.Namespace) -> None:
    async def run(s: Services) -> Any:
        return [ca_view(r) for r in await s.authority.list(include_deleted=args.all)]

    views = await _with_services(args, run)
    lines = [f"{v['id']:<20} {v['kind']:<14} {v['state']:<12} {v['subject']}" for v in views]
    emit(args, views, "\n".join(lines) if lines else "no CAs")


@command("ca show")
async def cmd_ca_show(args: argparse.Namespace) -> None:
    async def run(s: Services) -> Any:
        return ca_view(await s.authority.get(args.id, fresh=True), with_pem=True)

    view = await _with_services(args, run)
    emit(args, view, "\n".join(f"{k}: {v}" for k, v in view.items() if k != "certificate_pem"))


@command("ca delete")
async def cmd_ca_delete(args: argparse.Namespace) -> None:
    async def run(s: Services) -> None:
        await s.authority.delete(args.id, _actor())

    await _with_services(args, run)
    emit(args, {"deleted": args.id}, f"deleted CA {args.id}")


@command("ca services")
async def cmd_ca_services(args: argparse.Namespace) -> None:
    async def run(s: Services) -> Any:
        if args.set is not None:
            return ca_view(await s.authority.set_services(args.id, _services_arg(args.set), _actor()))
        return ca_view(await s.authority.get(args.id, fresh=True))

    view = await _with_services(args, run)
    emit(args, view["services"], ", ".join(view["services"]) or "(none)")


# --- cert -------------------------------------------------------------------------------------


def _read_cert(path: Path) -> bytes:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    return data


def _cert_view(record: Any, now: dt.datetime) -> dict[str, Any]:
    return {
        "serial": record.serial,
        "ca": record.ca,
        "profile": record.profile,
        "subject": record.subject,
        "sans": list(record.sans),
        "status": record.effective_status(now).value,
        "not_before": record.not_before,
        "not_after": record.not_after,
        "issued_at": record.issued_at,
        "revoked_at": record.revoked_at,
        "revocation_reason": record.revocation_reason.value if record.revocation_reason else None,
    }


@command("cert issue")
async def cmd_cert_issue(args: argparse.Namespace) -> None:
    raw = Path(args.csr).read_bytes()
    if b"-----BEGIN" in raw:
        raw = x509.load_pem_x509_csr(raw).public_bytes(serialization.Encoding.DER)
    extensions = []
    for item in args.extension or []:
        oid, _, value = item.partition("=")
        extensions.append(RequestedExtension(oid, bytes.fromhex(value)))
    request = IssuanceRequest(
        ca=args.ca,
        profile=args.profile,
        requester=Requester("cli", _actor()),
        csr=raw,
        subject=parse_dn(args.subject) if args.subject else None,
        subject_alt_names=tuple(parse_san(s) for s in args.san) if args.san else None,
        validity=dt.timedelta(days=args.days) if args.days else None,
        extensions=tuple(extensions),
    )

    async def run(s: Services) -> Any:
        return await s.issuance.issue(request)

    issued = await _with_services(args, run)
    cert = x509.load_der_x509_certificate(issued.der)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    if args.chain:
        pem += b"".join(
            x509.load_der_x509_certificate(d).public_bytes(serialization.Encoding.PEM) for d in issued.chain
        )
    if args.out:
        Path(args.out).write_bytes(pem)
    view = {"serial": issued.serial_hex, "not_after": issued.not_after, "out": args.out}
    if args.json:
        view["pem"] = pem.decode()
    emit(args, view, f"issued {issued.serial_hex}" + (f" -> {args.out}" if args.out else "\n" + pem.decode()))


@command("cert show")
async def cmd_cert_show(args: argparse.Namespace) -> None:
    async def run(s: Services) -> Any:
        record = await s.store.certificates.get(_serial(args.serial))
        if record is None:
            raise CegErrorNotFound(f"no certificate with serial {args.serial}")
        view = _cert_view(record, s.clock.now())
        view["pem"] = (
            x509.load_der_x509_certificate(record.der).public_bytes(serialization.Encoding.PEM).decode()
        )
        return view

    view = await _with_services(args, run)
    if args.pem and not args.json:
        sys.stdout.write(view["pem"])
        return
    emit(args, view, "\n".join(f"{k}: {v}" for k, v in view.items() if k != "pem"))


def _serial(text: str) -> str:
    cleaned = text.strip().lower().replace(":", "")
    try:
        return format(int(cleaned, 16), "x")
    except ValueError:
        raise UsageError(f"{text!r} is not a hex serial number") from None


def _date(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@command("cert search")
async def cmd_cert_search(args: argparse.Namespace) -> None:
    from ca_core.model import CertStatus

    query = CertificateQuery(
        ca=args.ca,
        serial=_serial(args.serial) if args.serial else None,
        status=CertStatus(args.status) if args.status else None,
        profile=args.profile,
        text=args.text,
        expires_after=_date(args.expires_after),
        expires_before=_date(args.expires_before),
        limit=args.limit,
        offset=args.offset,
    )

    async def run(s: Services) -> Any:
        page = await s.store.certificates.search(query, now=s.clock.now())
        return {"total": page.total, "items": [_cert_view(r, s.clock.now()) for r in page.items]}

    result = await _with_services(args, run)
    lines = [f"{c['serial']:<34} {c['status']:<8} {c['profile']:<32} {c['subject']}" for c in result["items"]]
    emit(args, result, "\n".join([*lines, f"({len(lines)} of {result['total']})"]))


@command("cert export")
async def cmd_cert_export(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    async def run(s: Services) -> int:
        first = await s.store.certificates.search(CertificateQuery(ca=args.ca, limit=1), now=s.clock.now())
        progress = Progress(first.total, "exporting", force=args.progress)
        written, offset = 0, 0
        while True:
            page = await s.store.certificates.search(
                CertificateQuery(ca=args.ca, limit=500, offset=offset), now=s.clock.now()
            )
            for record in page.items:
                pem = x509.load_der_x509_certificate(record.der).public_bytes(serialization.Encoding.PEM)
                (out / f"{record.serial}.pem").write_bytes(pem)
                written += 1
                progress.step()
            if not page.has_more:
                break
            offset += len(page.items)
        progress.close()
        return written

    written = await _with_services(args, run)
    emit(args, {"exported": written, "directory": str(out)}, f"exported {written} certificates to {out}")


async def _status_change(args: argparse.Namespace, action: str) -> None:
    from ca_core.model import RevocationReason
    from ca_core.status.revocation import StatusChange

    reason = RevocationReason(args.reason) if getattr(args, "reason", None) else RevocationReason.UNSPECIFIED
    change = StatusChange(
        serial=_serial(args.serial),
        actor=_actor(),
        reason=reason,
        invalidity_date=_date(getattr(args, "invalidity_date", None)),
        comment=args.comment,
        publish_now=args.publish_now,
        ca=args.ca,
    )

    async def run(s: Services) -> Any:
        record = await getattr(s.revocation, action)(change)
        return _cert_view(record, s.clock.now())

    view = await _with_services(args, run)
    done = {"revoke": "revoked", "hold": "put on hold", "unhold": "taken off hold"}[action]
    extra = " (CRL published)" if args.publish_now else " (the CRL follows within 15 minutes)"
    emit(args, view, f"{view['serial']} {done}: status {view['status']}{extra}")


@command("cert revoke")
async def cmd_cert_revoke(args: argparse.Namespace) -> None:
    await _status_change(args, "revoke")


@command("cert hold")
async def cmd_cert_hold(args: argparse.Namespace) -> None:
    await _status_change(args, "hold")


@command("cert unhold")
async def cmd_cert_unhold(args: argparse.Namespace) -> None:
    await _status_change(args, "unhold")


# --- crl / ocsp ---------------------------------------------------------------------------------


@command("crl publish")
async def cmd_crl_publish(args: argparse.Namespace) -> None:
    async def run(s: Services) -> Any:
        if args.ca:
            targets = [args.ca]
        else:
            targets = [
                r.id
                for r in await s.authority.list()
                if r.state.value == "active" and r.key_ref and r.certificate is not None
            ]
        views = []
        for ca_id in targets:
            crl = await s.crls.publish(ca_id, actor=_actor())
            views.append(
                {
                    "ca": ca_id,
                    "number": crl.number,
                    "entries": crl.entries,
                    "this_update": crl.this_update,
                    "next_update": crl.next_update,
                    "url": s.urls.crl(ca_id),
                }
            )
        return views

    views = await _with_services(args, run)
    lines = [
        f"{v['ca']}: CRL #{v['number']} with {v['entries']} entries, next update {v['next_update']}"
        for v in views
    ]
    emit(args, views, "\n".join(lines) if lines else "no CA can publish a CRL")


@command("ca ocsp")
async def cmd_ca_ocsp(args: argparse.Namespace) -> None:
    require = None if args.require_signed_requests is None else args.require_signed_requests == "yes"

    async def run(s: Services) -> Any:
        if args.signer is None and require is None:
            ca = await s.authority.get(args.id, fresh=True)
            from ca_core.status.responder import OcspSettings

            settings = OcspSettings.of(ca.record.settings)
        else:
            settings = await s.ocsp.configure(args.id, args.signer, require, _actor())
        return {"ca": args.id, "url": s.urls.ocsp(args.id), **settings.as_dict()}

    view = await _with_services(args, run)
    emit(
        args,
        view,
        f"{view['ca']}: OCSP signed by {view['signer']}, signed requests "
        + ("required" if view["require_signed_requests"] else "optional"),
    )


class CegErrorNotFound(CegError):
    code = "not_found"


# --- gateway bindings -------------------------------------------------------------------------


def _binding_view(b: Any) -> dict[str, Any]:
    return {
        "protocol": b.protocol,
        "ca": b.ca,
        "enabled": b.enabled,
        "allowed_profiles": list(b.allowed_profiles),
        "default_profile": b.default_profile,
        "settings": dict(b.settings),
    }


def _settings_arg(items: Sequence[str] | None) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set {item!r}: expected key=value")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return settings


@command("gateway add")
async def cmd_gateway_add(args: argparse.Namespace) -> None:
    from gateway.bindings import BindingRegistry
    from gateway.frontends import discover

    async def run(s: Services) -> Any:
        registry = BindingRegistry(s, discover())
        binding = await registry.put(
            args.protocol,
            args.ca,
            _settings_arg(args.set),
            _services_arg(args.profiles) or None,
            args.default_profile,
            not args.disabled,
            _actor(),
        )
        return _binding_view(binding)

    view = await _with_services(args, run)
    emit(args, view, f"{view['protocol']} on {view['ca']}: profiles {', '.join(view['allowed_profiles'])}")


@command("gateway remove")
async def cmd_gateway_remove(args: argparse.Namespace) -> None:
    from gateway.bindings import BindingRegistry
    from gateway.frontends import discover

    async def run(s: Services) -> None:
        await BindingRegistry(s, discover()).remove(args.protocol, args.ca, _actor())

    await _with_services(args, run)
    emit(args, {"removed": [args.protocol, args.ca]}, f"removed {args.protocol} from {args.ca}")


@command("gateway list")
async def cmd_gateway_list(args: argparse.Namespace) -> None:
    from gateway.bindings import binding_of

    async def run(s: Services) -> Any:
        return [_binding_view(binding_of(r)) for r in await s.store.bindings.list(ca=args.ca)]

    views = await _with_services(args, run)
    lines = [
        f"{v['ca']:<20} {v['protocol']:<8} {'on' if v['enabled'] else 'off':<4} {v['default_profile']}"
        for v in views
    ]
    emit(args, views, "\n".join(lines) if lines else "no bindings")


# --- credentials --------------------------------------------------------------------------------


@command("credential create")
async def cmd_credential_create(args: argparse.Namespace) -> None:
    scope: dict[str, Any] = {}
    if args.ca:
        scope["ca"] = args.ca
    if args.protocol:
        scope["protocol"] = args.protocol

    async def run(s: Services) -> Any:
        creds = s.credentials
        if args.kind == "token":
            issued = await creds.create_token(args.name, args.role, _actor(), scope)
            return {"id": issued.credential.id, "kind": "token", "token": issued.secret}
        if args.kind == "basic":
            issued = await creds.create_basic(args.name, scope, args.password, _actor())
            return {
                "id": issued.credential.id,
                "kind": "basic",
                "username": args.name,
                "password": issued.secret,
            }
        if args.kind == "eab":
            kid, key = await creds.create_eab(args.name, scope, _actor())
            return {"kind": "eab", "kid": kid, "hmac_key": key}
        if args.kind == "shared-secret":
            issued = await creds.create_shared_secret(args.name, scope, args.password, _actor())
            return {
                "id": issued.credential.id,
                "kind": "shared-secret",
                "reference": args.name,
                "secret": issued.secret,
            }
        if args.kind == "client-cert":
            import secrets as pysecrets

            from gateway.client_credentials import issue_client_credential

            if not args.ca or not args.out:
                raise UsageError(
                    "client-cert credentials need --ca (the issuing CA) and --out (the .p12 file)"
                )
            password = args.password or pysecrets.token_urlsafe(12)
            record, p12 = await issue_client_credential(
                s, args.ca, args.name, args.role, {"cas": [args.ca]}, password, _actor()
            )
            Path(args.out).write_bytes(p12)
            os.chmod(args.out, 0o600)
            return {"id": record.id, "kind": "client-cert", "p12": args.out, "p12_password": password}
        raise UsageError(f"unknown credential kind {args.kind}")

    emit(args, await _with_services(args, run))


@command("credential list")
async def cmd_credential_list(args: argparse.Namespace) -> None:
    async def run(s: Services) -> Any:
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "name": r.name,
                "role": r.role,
                "scope": r.scope,
                "created_at": r.created_at,
                "revoked_at": r.revoked_at,
            }
            for r in await s.credentials.list(args.kind, args.all)
        ]

    views = await _with_services(args, run)
    lines = [f"{v['id']:<20} {v['kind']:<14} {v['role']:<8} {v['name']}" for v in views]
    emit(args, views, "\n".join(lines) if lines else "no credentials")


@command("credential revoke")
async def cmd_credential_revoke(args: argparse.Namespace) -> None:
    async def run(s: Services) -> None:
        await s.credentials.revoke(args.id, _actor())

    await _with_services(args, run)
    emit(args, {"revoked": args.id}, f"revoked credential {args.id}")


# --- SCEP ---------------------------------------------------------------------------------------


@command("scep challenge")
async def cmd_scep_challenge(args: argparse.Namespace) -> None:
    """A one-time challengePassword for a SCEP binding with dynamic challenges (NDES-like)."""
    from protocols.scep import create_challenge

    async def run(s: Services) -> Any:
        issued = await create_challenge(s, args.ca, args.subject, args.ttl, _actor())
        return {
            "challenge": issued.challenge,
            "id": issued.id,
            "ca": issued.ca,
            "subject": issued.subject,
            "expires_at": issued.expires_at,
        }

    view = await _with_services(args, run)
    emit(args, view, f"{view['challenge']}  (one use, until {view['expires_at']})")


# --- audit ------------------------------------------------------------------------------------


@command("audit verify")
async def cmd_audit_verify(args: argparse.Namespace) -> int:
    from ca_core.audit import parse_anchor

    try:
        anchors = dict(parse_anchor(text) for text in args.anchor or ())
    except CegError as exc:
        raise UsageError(f"--{exc.message}") from None

    async def run(s: Services) -> Any:
        return await s.store.audit.verify(anchors)

    problems = await _with_services(args, run)
    view = {"ok": not problems, "problems": [{"seq": p.seq, "problem": p.problem} for p in problems]}
    emit(args, view, "audit log intact" if not problems else "\n".join(str(p) for p in problems))
    return 0 if not problems else 3


@command("audit head")
async def cmd_audit_head(args: argparse.Namespace) -> None:
    """The log's last sequence number and hash: keep it outside the database (a ticket, a
    printout, another system) and give it back to `ceg audit verify --anchor`."""

    async def run(s: Services) -> Any:
        return await s.store.audit.head()

    seq, digest = await _with_services(args, run)
    emit(args, {"seq": seq, "hash": digest, "anchor": f"{seq}:{digest}"}, f"{seq}:{digest}")


# --- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        default=str(default_data_dir()),
        help="data directory (default ./ceg-data or $CEG_DATA_DIR)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")

    parser = argparse.ArgumentParser(prog="ceg", description="certificate enrollment gateway")
    sub = parser.add_subparsers(dest="group", required=True)

    p = sub.add_parser("init", parents=[common], help="create the configuration and database")
    p.add_argument("--demo", action="store_true", help="also create demo CAs, bindings and credentials")
    p.add_argument("--db", help="database URL (default: SQLite in the data dir)")
    p.add_argument("--key-backend", choices=["file", "pkcs11"], default="file")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--https-port", type=int, default=8443)

    p = sub.add_parser("serve", parents=[common], help="run the gateway")
    p.add_argument("--host")
    p.add_argument("--http-port", type=int)
    p.add_argument("--https-port", type=int)
    p.add_argument("--workers", type=int, help="worker processes sharing the ports (default: one per core)")

    db = sub.add_parser("db", help="database").add_subparsers(dest="action", required=True)
    db.add_parser("migrate", parents=[common], help="upgrade the schema")

    ca = sub.add_parser("ca", help="certificate authorities").add_subparsers(dest="action", required=True)
    key_types = [k.value for k in KeyAlgorithm]
    p = ca.add_parser("create-root", parents=[common])
    p.add_argument("id")
    p.add_argument("--subject", required=True, help='RFC 4514 DN, e.g. "CN=Example Root,O=Example"')
    p.add_argument("--key-type", choices=key_types, default="ec-p256")
    p.add_argument("--years", type=int, default=20)
    p.add_argument("--ocsp", action="store_true")
    p = ca.add_parser("create-issuing", parents=[common])
    p.add_argument("id")
    p.add_argument("--parent", required=True)
    p.add_argument("--subject", required=True)
    p.add_argument("--key-type", choices=key_types, default="ec-p256")
    p.add_argument("--services", help="comma-separated profile sets, e.g. privatessl,est,scep")
    p.add_argument("--years", type=int, default=10)
    p.add_argument("--ocsp", action="store_true")
    p = ca.add_parser("register-external-root", parents=[common])
    p.add_argument("id")
    p.add_argument("--cert", required=True, help="the external root certificate (PEM or DER)")
    p = ca.add_parser("create-external-issuing", parents=[common])
    p.add_argument("id")
    p.add_argument("--root", required=True, help="id of a registered external root")
    p.add_argument("--subject", required=True)
    p.add_argument("--key-type", choices=key_types, default="ec-p256")
    p.add_argument("--services")
    p.add_argument("--ocsp", action="store_true")
    p = ca.add_parser("export-csr", parents=[common])
    p.add_argument("id")
    p.add_argument("--out")
    p.add_argument("--der", action="store_true")
    p = ca.add_parser("import-cert", parents=[common])
    p.add_argument("id")
    p.add_argument("cert")
    p = ca.add_parser("list", parents=[common])
    p.add_argument("--all", action="store_true", help="include deleted CAs")
    p = ca.add_parser("show", parents=[common])
    p.add_argument("id")
    p = ca.add_parser("delete", parents=[common])
    p.add_argument("id")
    p = ca.add_parser("services", parents=[common])
    p.add_argument("id")
    p.add_argument("--set", help="comma-separated profile sets to enable (replaces the current set)")

    p = ca.add_parser("ocsp", parents=[common], help="show or change a CA's OCSP settings")
    p.add_argument("id")
    p.add_argument(
        "--signer", choices=["responder", "ca"], help="delegated responder certificate or the CA key"
    )
    p.add_argument("--require-signed-requests", choices=["yes", "no"])

    cert = sub.add_parser("cert", help="certificates").add_subparsers(dest="action", required=True)
    p = cert.add_parser("issue", parents=[common])
    p.add_argument("--ca", required=True)
    p.add_argument("--profile", required=True)
    p.add_argument("--csr", required=True, help="PKCS#10 file (PEM or DER)")
    p.add_argument("--subject", help="subject DN (default: the CSR's)")
    p.add_argument("--san", action="append", help="type:value, e.g. dns:host.example (default: the CSR's)")
    p.add_argument("--days", type=int)
    p.add_argument("--extension", action="append", help="OID=hex DER of the extension value")
    p.add_argument("--out")
    p.add_argument("--chain", action="store_true", help="append the CA chain")
    p = cert.add_parser("show", parents=[common])
    p.add_argument("serial")
    p.add_argument("--pem", action="store_true")
    p = cert.add_parser("search", parents=[common])
    p.add_argument("--ca")
    p.add_argument("--serial")
    p.add_argument("--status", choices=["normal", "held", "revoked", "expired"])
    p.add_argument("--profile")
    p.add_argument("--text", help="substring of the subject or a SAN")
    p.add_argument("--expires-after")
    p.add_argument("--expires-before")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)
    p = cert.add_parser("export", parents=[common])
    p.add_argument("--ca")
    p.add_argument("--out", required=True, help="directory for <serial>.pem files")
    p.add_argument(
        "--progress", action="store_true", help="show the progress bar even when not on a terminal"
    )

    reasons = [r.value for r in RevocationReason if r is not RevocationReason.CERTIFICATE_HOLD]
    for action, help_text in (
        ("revoke", "revoke for good (reason certificateHold is the same as hold)"),
        ("hold", "put on hold (certificateHold, reversible)"),
        ("unhold", "take off hold"),
    ):
        p = cert.add_parser(action, parents=[common], help=help_text)
        p.add_argument("serial", help="hex serial number (colons allowed)")
        if action == "revoke":
            p.add_argument("--reason", choices=[*reasons, "certificateHold"], default="unspecified")
        if action != "unhold":
            p.add_argument(
                "--invalidity-date", help="ISO 8601; when the key is known or suspected compromised"
            )
        p.add_argument("--comment", help="kept in the audit log")
        p.add_argument("--ca", help="refuse unless the certificate belongs to this CA")
        p.add_argument("--publish-now", action="store_true", help="publish the CA's CRL at once")

    crl = sub.add_parser("crl", help="certificate revocation lists").add_subparsers(
        dest="action", required=True
    )
    p = crl.add_parser("publish", parents=[common], help="build and publish CRLs now")
    p.add_argument("--ca", help="only this CA (default: every CA that has a key)")

    gw = sub.add_parser("gateway", help="protocol bindings per issuing CA").add_subparsers(
        dest="action", required=True
    )
    p = gw.add_parser("add", parents=[common])
    p.add_argument("protocol")
    p.add_argument("ca")
    p.add_argument("--profiles", help="comma-separated allowed profiles")
    p.add_argument("--default-profile")
    p.add_argument("--set", action="append", help="protocol setting key=value (value may be JSON)")
    p.add_argument("--disabled", action="store_true")
    p = gw.add_parser("remove", parents=[common])
    p.add_argument("protocol")
    p.add_argument("ca")
    p = gw.add_parser("list", parents=[common])
    p.add_argument("--ca")

    cr = sub.add_parser("credential", help="API and protocol credentials").add_subparsers(
        dest="action", required=True
    )
    p = cr.add_parser("create", parents=[common])
    p.add_argument(
        "--kind", choices=["token", "basic", "eab", "shared-secret", "client-cert"], default="token"
    )
    p.add_argument(
        "--name", required=True, help="name; the username for basic, the reference for shared-secret"
    )
    p.add_argument("--role", choices=["admin", "officer", "auditor"], default="officer")
    p.add_argument("--ca")
    p.add_argument("--protocol")
    p.add_argument("--password", help="basic/shared-secret/p12 password (default: generated)")
    p.add_argument("--out", help="client-cert: where to write the PKCS#12")
    p = cr.add_parser("list", parents=[common])
    p.add_argument("--kind")
    p.add_argument("--all", action="store_true")
    p = cr.add_parser("revoke", parents=[common])
    p.add_argument("id")

    sc = sub.add_parser("scep", help="SCEP front-end").add_subparsers(dest="action", required=True)
    p = sc.add_parser("challenge", parents=[common], help="create a one-time challengePassword")
    p.add_argument("--ca", required=True, help="issuing CA of the SCEP binding")
    p.add_argument("--subject", help="RFC 4514 DN the CSR must carry (default: any)")
    p.add_argument("--ttl", type=int, help="seconds the challenge stays valid (default: the binding's)")

    au = sub.add_parser("audit", help="audit log").add_subparsers(dest="action", required=True)
    p = au.add_parser("verify", parents=[common], help="check the hash chain")
    p.add_argument(
        "--anchor", action="append", metavar="SEQ:HASH", help="an earlier `ceg audit head`, kept elsewhere"
    )
    au.add_parser("head", parents=[common], help="last sequence number and hash, to keep as an anchor")
    return parser


def configure_logging(config: Config | None, level: str = "INFO") -> None:
    from gateway.logs import setup_logging

    setup_logging(config.logging.level if config else level, config.logging.json if config else False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    name = args.group if args.group in ("init", "serve") else f"{args.group} {args.action}"
    try:
        if name == "serve":
            return _serve(args)
        configure_logging(None, "WARNING")
        result: Any = asyncio.run(_COMMANDS[name](args))
        return result if isinstance(result, int) else 0
    except (ConfigError, UsageError) as exc:
        print(f"ceg: {exc}", file=sys.stderr)
        return 2
    except CegError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": exc.code, "message": exc.message}), file=sys.stderr)
        else:
            print(f"ceg: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _serve(args: argparse.Namespace) -> int:
    from gateway.listeners import serve

    overrides: dict[str, object] = {}
    for key in ("host", "http_port", "https_port"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    config = load_with_overrides(Path(args.data_dir), overrides)
    configure_logging(config)
    workers = args.workers if args.workers is not None else (config.server.workers or os.cpu_count() or 1)
    return serve(config, workers, overrides)
