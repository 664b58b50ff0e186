"""OpenSSL's own CMP client (`openssl cmp`, OpenSSL 3.0) against the live gateway:
ir with a shared secret, cr and kur signed with a certificate, p10cr, rr, genm, implicit
confirmation, delayed delivery with polling, and a certificate never confirmed. Every
enrollment ends in `openssl verify` of the certificate against the root."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_core.keys.file import generate_private_key
from ca_core.model import CertStatus, KeyAlgorithm, RevocationReason
from protocols.cmp import codec, confirmation, core, oids
from tests.support.gateway import LiveGateway
from tests.support.pki import openssl_verify
from tests.support.tools import require_tool

pytestmark = pytest.mark.interop

REFERENCE = "device-42"
SECRET = "correct horse battery staple"


@dataclass
class CmpLive:
    gateway: LiveGateway
    dir: Path

    @property
    def port(self) -> str:
        return self.gateway.http.rsplit(":", 1)[1]

    async def cmp(self, *args: str, path: str = ".well-known/cmp/p/issuing", expect_ok: bool = True) -> str:
        proc = await asyncio.create_subprocess_exec(
            "openssl",
            "cmp",
            "-config",
            "",
            "-server",
            f"127.0.0.1:{self.port}",
            "-path",
            path,
            "-msg_timeout",
            "30",
            *args,
            cwd=self.dir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
        text = out.decode(errors="replace")
        if expect_ok:
            assert proc.returncode == 0, text
        else:
            assert proc.returncode != 0, text
        return text

    def key(self, name: str, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256) -> str:
        key = generate_private_key(algorithm)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        (self.dir / name).write_bytes(pem)
        return name

    def certificate(self, name: str) -> bytes:
        return x509.load_pem_x509_certificate((self.dir / name).read_bytes()).public_bytes(
            serialization.Encoding.DER
        )

    async def verify(self, name: str) -> x509.Certificate:
        chain = (await self.gateway.services.authority.get(self.gateway.issuing)).chain
        der = self.certificate(name)
        openssl_verify(self.dir, chain[-1], chain[:-1], [der])
        return x509.load_der_x509_certificate(der)

    async def record(self, cert: x509.Certificate):  # type: ignore[no-untyped-def]
        record = await self.gateway.services.store.certificates.get(format(cert.serial_number, "x"))
        assert record is not None
        return record

    def mac(self) -> tuple[str, ...]:
        return ("-ref", REFERENCE, "-secret", f"pass:{SECRET}")

    def trust(self) -> tuple[str, ...]:
        return ("-trusted", str(self.gateway.root_pem))

    async def enroll(self, key: str, subject: str, out: str, *extra: str) -> x509.Certificate:
        await self.cmp(
            "-cmd", "ir", *self.mac(), "-newkey", key, "-subject", subject, "-certout", out, *extra
        )
        return await self.verify(out)


@pytest.fixture
async def live(live_gateway: LiveGateway, tmp_path: Path) -> CmpLive:
    require_tool("openssl")
    await live_gateway.bindings.put("cmp", live_gateway.issuing)
    await live_gateway.services.credentials.create_shared_secret(
        REFERENCE, {"protocol": "cmp", "ca": live_gateway.issuing}, secret=SECRET
    )
    work = tmp_path / "cmp"
    work.mkdir()
    return CmpLive(live_gateway, work)


async def test_ir_with_shared_secret(live: CmpLive) -> None:
    key = live.key("device.key")
    out = await live.cmp(
        "-cmd",
        "ir",
        *live.mac(),
        "-newkey",
        key,
        "-subject",
        "/CN=device-42.example",
        "-sans",
        "device-42.example",
        "-certout",
        "device.pem",
        "-extracertsout",
        "extra.pem",
        "-cacertsout",
        "capubs.pem",
        "-out_trusted",
        str(live.gateway.root_pem),  # OpenSSL itself validates the new certificate too
    )
    assert "received IP" in out and "received PKICONF" in out
    cert = await live.verify("device.pem")
    assert cert.subject.rfc4514_string() == "CN=device-42.example"
    record = await live.record(cert)
    assert record.profile == core.PROFILES[0] and record.requester["principal"] == f"ref:{REFERENCE}"
    assert (
        x509.load_pem_x509_certificate((live.dir / "capubs.pem").read_bytes()).public_bytes(
            serialization.Encoding.PEM
        )
        == live.gateway.root_pem.read_bytes()
    )


async def test_ir_with_implicit_confirmation_and_operation_label_on_the_cmp_prefix(live: CmpLive) -> None:
    key = live.key("device.key", KeyAlgorithm.RSA_2048)
    out = await live.cmp(
        "-cmd",
        "ir",
        *live.mac(),
        "-newkey",
        key,
        "-subject",
        "/CN=implicit.example",
        "-implicit_confirm",
        "-certout",
        "device.pem",
        path="cmp/issuing/initialization",
    )
    assert "sending CERTCONF" not in out
    cert = await live.verify("device.pem")
    assert (await live.record(cert)).status is CertStatus.NORMAL


async def test_cr_and_kur_signed_with_certificate_and_key(live: CmpLive) -> None:
    await live.enroll(live.key("first.key"), "/CN=first.example", "first.pem")
    await live.cmp(
        "-cmd",
        "cr",
        "-cert",
        "first.pem",
        "-key",
        "first.key",
        *live.trust(),
        "-newkey",
        live.key("second.key"),
        "-subject",
        "/CN=second.example",
        "-certout",
        "second.pem",
    )
    second = await live.verify("second.pem")
    assert second.subject.rfc4514_string() == "CN=second.example"

    out = await live.cmp(
        "-cmd",
        "kur",
        "-cert",
        "first.pem",
        "-key",
        "first.key",
        *live.trust(),
        "-newkey",
        live.key("updated.key"),
        "-certout",
        "updated.pem",
    )
    assert "received KUP" in out
    updated = await live.verify("updated.pem")
    first = x509.load_pem_x509_certificate((live.dir / "first.pem").read_bytes())
    assert updated.subject == first.subject and updated.public_key() != first.public_key()
    assert (await live.record(updated)).renewal_of == format(first.serial_number, "x")


async def test_p10cr_with_a_csr(live: CmpLive) -> None:
    key = live.key("p10.key")
    proc = await asyncio.create_subprocess_exec(
        "openssl", "req", "-new", "-key", key, "-subj", "/CN=p10.example", "-out", "p10.csr", cwd=live.dir
    )
    assert await proc.wait() == 0
    out = await live.cmp("-cmd", "p10cr", *live.mac(), "-csr", "p10.csr", "-certout", "p10.pem")
    assert "received CP" in out
    cert = await live.verify("p10.pem")
    assert cert.subject.rfc4514_string() == "CN=p10.example"


async def test_rr_revokes_the_certificate(live: CmpLive) -> None:
    cert = await live.enroll(live.key("device.key"), "/CN=revoke-me.example", "device.pem")
    out = await live.cmp(
        "-cmd",
        "rr",
        "-cert",
        "device.pem",
        "-key",
        "device.key",
        "-oldcert",
        "device.pem",
        *live.trust(),
        "-revreason",
        "4",
    )
    assert "revocation accepted" in out
    record = await live.record(cert)
    assert record.status is CertStatus.REVOKED and record.revocation_reason is RevocationReason.SUPERSEDED


async def test_genm_ca_certificates(live: CmpLive) -> None:
    out = await live.cmp("-cmd", "genm", "-infotype", "caCerts", *live.mac(), "-rspout", "genp.der")
    assert "genp contains ITAV of type: id-it-caCerts" in out
    genp = codec.decode_message((live.dir / "genp.der").read_bytes())
    assert isinstance(genp.body, codec.GenBody)
    (item,) = genp.body.items
    assert item.oid == oids.OID_IT_CA_CERTS and item.value is not None
    issuing, root = codec.decode_certificates(item.value)
    openssl_verify(live.dir, root, [], [issuing])  # the CA certificates verify under the root
    assert (
        x509.load_der_x509_certificate(root).public_bytes(serialization.Encoding.PEM)
        == live.gateway.root_pem.read_bytes()
    )
    out = await live.cmp("-cmd", "genm", "-infotype", "certReqTemplate", *live.mac())
    assert "id-it-certReqTemplate" in out


async def test_manual_approval_with_polling(live: CmpLive) -> None:
    await live.gateway.bindings.put(
        "cmp", live.gateway.issuing, settings={"manual_approval": True, "poll_interval_seconds": 1}
    )
    client = asyncio.create_task(
        live.enroll(live.key("device.key"), "/CN=waiting.example", "device.pem", "-total_timeout", "60")
    )
    approvals = live.gateway.services.approvals
    for _ in range(100):
        pending = await approvals.list()
        if pending:
            break
        await asyncio.sleep(0.1)
    assert pending, "the ir was not parked for approval"
    await asyncio.sleep(1.5)  # let the client poll at least once
    await approvals.approve(pending[0].id, "officer")
    cert = await client
    assert cert.subject.rfc4514_string() == "CN=waiting.example"


async def test_unconfirmed_certificate_is_revoked_after_the_grace_period(live: CmpLive) -> None:
    # -disable_confirm: the client never sends certConf (RFC 4210 says it must).
    out = await live.cmp(
        "-cmd",
        "ir",
        *live.mac(),
        "-newkey",
        live.key("device.key"),
        "-subject",
        "/CN=unconfirmed.example",
        "-disable_confirm",
        "-certout",
        "device.pem",
    )
    assert "sending CERTCONF" not in out
    cert = await live.verify("device.pem")
    services = live.gateway.services
    assert await confirmation.revoke_overdue(services) == 0
    later = services.clock.now() + dt.timedelta(seconds=core.CmpSettings().confirm_wait_seconds + 1)
    assert await confirmation.revoke_overdue(services, now=later) == 1
    assert (await live.record(cert)).status is CertStatus.REVOKED


async def test_wrong_secret_is_refused_with_bad_message_check(live: CmpLive) -> None:
    out = await live.cmp(
        "-cmd",
        "ir",
        "-ref",
        REFERENCE,
        "-secret",
        "pass:wrong",
        "-newkey",
        live.key("device.key"),
        "-subject",
        "/CN=x.example",
        "-certout",
        "device.pem",
        "-unprotected_errors",
        expect_ok=False,
    )
    assert "badMessageCheck" in out
    assert not (live.dir / "device.pem").exists()
