"""/api/v1 end to end through the real app, on SQLite and PostgreSQL: every endpoint,
and the error paths (bad JSON, unknown CA, wrong role, no token, disabled profile, ...)."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ca_core.keys.file import generate_private_key
from ca_core.model import IssuanceRequest, KeyAlgorithm, Requester
from tests.support.pki import make_csr, openssl_verify
from tests.unit.gateway.api.conftest import Api


def csr_pem(**kw: object) -> str:
    der = make_csr(**kw)  # type: ignore[arg-type]
    return x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM).decode()


async def test_issue_show_search_and_status_changes(api: Api, tmp_path: Path) -> None:
    status, issued = await api.call(
        "POST",
        "/api/v1/certificates",
        "officer",
        {"ca": "issuing", "profile": "privatessl-tls-server", "csr": csr_pem(dns=["web.example"])},
    )
    assert status == 201, issued
    serial = issued["serial"]
    assert issued["status"] == "normal" and issued["sans"] == ["dns:web.example"]
    assert issued["requester"] == {"protocol": "api", "principal": "test-officer"}
    leaf = x509.load_pem_x509_certificate(issued["certificate_pem"].encode())
    chain = [x509.load_pem_x509_certificate(p.encode()) for p in issued["chain_pem"]]
    der = serialization.Encoding.DER
    openssl_verify(
        tmp_path, chain[-1].public_bytes(der), [chain[0].public_bytes(der)], [leaf.public_bytes(der)]
    )

    # base64 DER CSRs and explicit subject/SANs/validity are accepted too
    status, other = await api.call(
        "POST",
        "/api/v1/certificates",
        "admin",
        {
            "ca": "issuing",
            "profile": "privatessl-tls-client",
            "csr": base64.b64encode(make_csr(cn="ignored")).decode(),
            "subject": "CN=client.example,O=Example",
            "sans": ["dns:client.example", "email:ops@example.com"],
            "validity_days": 30,
        },
    )
    assert status == 201, other
    assert other["subject"] == "CN=client.example,O=Example"

    status, shown = await api.call("GET", f"/api/v1/certificates/{serial}", "auditor")
    assert status == 200 and shown["serial"] == serial and "BEGIN CERTIFICATE" in shown["certificate_pem"]
    status, shown = await api.call("GET", f"/api/v1/certificates/{serial.upper()}", "auditor")
    assert status == 200, "serials are case-insensitive hex"

    status, page = await api.call("GET", "/api/v1/certificates?text=web.example", "auditor")
    assert status == 200 and [c["serial"] for c in page["items"]] == [serial] and page["total"] == 1
    status, page = await api.call(
        "GET", "/api/v1/certificates?profile=privatessl-tls-client&limit=1", "auditor"
    )
    assert [c["serial"] for c in page["items"]] == [other["serial"]]
    status, page = await api.call(
        "GET",
        "/api/v1/certificates?ca=issuing&expires_before=2099-01-01T00:00:00Z&expires_after=2020-01-01",
        "auditor",
    )
    assert status == 200 and page["total"] >= 2
    status, page = await api.call("GET", f"/api/v1/certificates?serial={serial}", "auditor")
    assert page["total"] == 1

    status, held = await api.call(
        "POST", f"/api/v1/certificates/{serial}/hold", "officer", {"comment": "lost laptop"}
    )
    assert status == 200 and held["status"] == "held"
    status, page = await api.call("GET", "/api/v1/certificates?status=held", "auditor")
    assert [c["serial"] for c in page["items"]] == [serial]
    status, body = await api.call("POST", f"/api/v1/certificates/{serial}/hold", "officer")
    assert status == 409 and body["error"]["code"] == "invalid_state"
    status, unheld = await api.call("POST", f"/api/v1/certificates/{serial}/unhold", "officer")
    assert status == 200 and unheld["status"] == "normal"
    status, revoked = await api.call(
        "POST",
        f"/api/v1/certificates/{serial}/revoke",
        "officer",
        {"reason": "keyCompromise", "publish_now": True, "invalidity_date": "2026-01-01T00:00:00Z"},
    )
    assert (
        status == 200 and revoked["status"] == "revoked" and revoked["revocation_reason"] == "keyCompromise"
    )
    status, body = await api.call("POST", f"/api/v1/certificates/{serial}/unhold", "officer")
    assert status == 409
    status, body = await api.call(
        "POST", f"/api/v1/certificates/{serial}/revoke", "officer", {"reason": "bogus"}
    )
    assert status == 400 and body["error"]["target"] == "reason"

    # every mutation is in the audit log, with the API credential as actor
    status, audit = await api.call("GET", f"/api/v1/audit?serial={serial}", "auditor")
    actions = [(e["action"], e["actor"]) for e in audit["items"]]
    assert ("certificate.issued", "api:test-officer") in actions
    assert ("certificate.revoked", "api:test-officer") in actions


async def test_issue_refusals(api: Api) -> None:
    async def issue(body: object, role: str = "officer") -> tuple[int, dict]:
        return await api.call("POST", "/api/v1/certificates", role, body)  # type: ignore[return-value]

    good = {"ca": "issuing", "profile": "privatessl-tls-server", "csr": csr_pem(dns=["a.example"])}
    # disabled profile: the CA does not enable the v2g service
    await api.services.authority.set_services("issuing", ["privatessl"])
    status, body = await issue({**good, "profile": "v2g-user-identity"})
    assert status == 422 and body["error"]["code"] == "profile_not_enabled", body
    status, body = await issue({**good, "profile": "no-such-profile"})
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await issue({**good, "profile": "internal-api-client"})
    assert status == 422
    status, body = await issue({**good, "ca": "nope"})
    assert status == 404 and "nope" in body["error"]["message"]
    status, body = await issue({**good, "ca": "root"})
    assert status == 422  # roots issue no subscriber certificates
    status, body = await issue({**good, "csr": "not base64!"})
    assert status == 400 and body["error"]["target"] == "csr"
    status, body = await issue({**good, "csr": base64.b64encode(b"\x30\x03\x02\x01\x00").decode()})
    assert status == 400 and body["error"]["code"] == "bad_csr"
    status, body = await issue({**good, "sans": ["bogus"]})
    assert status == 400 and body["error"]["code"] == "bad_san"
    status, body = await issue({**good, "subject": "not a dn"})
    assert status == 400
    status, body = await issue({"ca": "issuing"})
    assert status == 400 and body["error"]["target"] == "profile"
    status, body = await issue({**good, "validity_days": "ten"})
    assert status == 400 and body["error"]["target"] == "validity_days"
    status, body = await issue(good, role="auditor")
    assert status == 403 and body["error"]["code"] == "forbidden"
    async with api.client.post(
        "/api/v1/certificates",
        data=b"{not json",
        headers={**api.auth("officer"), "Content-Type": "application/json"},
    ) as response:
        assert response.status == 400 and (await response.json())["error"]["code"] == "bad_json"
    async with api.client.post(
        "/api/v1/certificates", data=b"[1, 2]", headers=api.auth("officer")
    ) as response:
        assert response.status == 400
    async with api.client.post("/api/v1/certificates", data=b"", headers=api.auth("officer")) as response:
        assert response.status == 400
    async with api.client.post(
        "/api/v1/certificates", data=b"{" + b" " * 300_000 + b"}", headers=api.auth("officer")
    ) as response:
        assert response.status == 413
    # nothing was issued by any of these, and the refusals are audited
    assert await api.services.store.certificates.count(ca="issuing") == 0
    entries = await api.services.store.audit.entries(actions=["certificate.refused"], limit=100)
    assert {e.detail["code"] for e in entries} >= {"profile_not_enabled", "bad_csr"}


async def test_certificate_lookup_errors(api: Api) -> None:
    status, body = await api.call("GET", "/api/v1/certificates/abcdef", "auditor")
    assert status == 404 and body["error"]["target"] == "abcdef"
    status, body = await api.call("GET", "/api/v1/certificates/xyz", "auditor")
    assert status == 400
    status, body = await api.call("POST", "/api/v1/certificates/abcdef/revoke", "officer")
    assert status == 404
    status, body = await api.call("GET", "/api/v1/certificates?status=weird", "auditor")
    assert status == 400 and body["error"]["target"] == "status"
    status, body = await api.call("GET", "/api/v1/certificates?limit=0", "auditor")
    assert status == 400 and body["error"]["target"] == "limit"
    status, body = await api.call("GET", "/api/v1/certificates?expires_after=yesterday", "auditor")
    assert status == 400


async def test_ca_lifecycle(api: Api, tmp_path: Path) -> None:
    status, root = await api.call(
        "POST", "/api/v1/cas", "admin", {"kind": "root", "id": "r2", "subject": "CN=R2", "validity_years": 5}
    )
    assert status == 201 and root["kind"] == "root" and "BEGIN CERTIFICATE" in root["certificate_pem"]
    status, issuing = await api.call(
        "POST",
        "/api/v1/cas",
        "admin",
        {
            "kind": "issuing",
            "id": "i2",
            "parent": "r2",
            "subject": "CN=I2",
            "key_algorithm": "ec-p384",
            "services": ["privatessl", "est"],
            "ocsp": True,
        },
    )
    assert status == 201 and issuing["parent"] == "r2" and issuing["services"] == ["privatessl", "est"]
    status, body = await api.call(
        "POST", "/api/v1/cas", "admin", {"kind": "root", "id": "r2", "subject": "CN=x"}
    )
    assert status == 409
    status, body = await api.call(
        "POST", "/api/v1/cas", "admin", {"kind": "root", "id": "Bad Id", "subject": "CN=x"}
    )
    assert status == 400
    status, body = await api.call("POST", "/api/v1/cas", "admin", {"kind": "wizard", "id": "x"})
    assert status == 400 and body["error"]["target"] == "kind"
    status, body = await api.call(
        "POST", "/api/v1/cas", "admin", {"kind": "issuing", "id": "i3", "parent": "nope", "subject": "CN=x"}
    )
    assert status == 404
    status, body = await api.call(
        "POST",
        "/api/v1/cas",
        "admin",
        {"kind": "root", "id": "r3", "subject": "CN=x", "key_algorithm": "dsa"},
    )
    assert status == 400
    status, body = await api.call(
        "POST", "/api/v1/cas", "officer", {"kind": "root", "id": "r4", "subject": "CN=x"}
    )
    assert status == 403

    status, listing = await api.call("GET", "/api/v1/cas", "auditor")
    assert {c["id"] for c in listing["items"]} >= {"root", "issuing", "r2", "i2"}
    status, shown = await api.call("GET", "/api/v1/cas/i2", "auditor")
    assert status == 200 and shown["key_algorithm"] == "ec-p384"
    status, body = await api.call("GET", "/api/v1/cas/nope", "auditor")
    assert status == 404 and body["error"]["code"] == "not_found"

    status, services = await api.call("PUT", "/api/v1/cas/i2/services", "admin", {"services": ["scep"]})
    assert status == 200 and services["services"] == ["scep"]
    status, services = await api.call("GET", "/api/v1/cas/i2/services", "auditor")
    assert services["services"] == ["scep"]
    status, body = await api.call("PUT", "/api/v1/cas/i2/services", "admin", {"services": ["teleport"]})
    assert status == 400
    status, body = await api.call("PUT", "/api/v1/cas/r2/services", "admin", {"services": ["scep"]})
    assert status == 400

    status, body = await api.call("DELETE", "/api/v1/cas/r2", "admin")
    assert status == 409, "a root with a live issuing CA stays"
    status, body = await api.call("DELETE", "/api/v1/cas/i2", "officer")
    assert status == 403
    status, body = await api.call("DELETE", "/api/v1/cas/i2", "admin")
    assert status == 200
    status, body = await api.call("DELETE", "/api/v1/cas/r2", "admin")
    assert status == 200
    status, listing = await api.call("GET", "/api/v1/cas?include_deleted=true", "auditor")
    assert {c["id"]: c["state"] for c in listing["items"]}["r2"] == "deleted"


async def test_external_root_csr_and_import(api: Api, tmp_path: Path) -> None:
    import datetime as dt

    # The operator's own root, made here with cryptography.
    key = generate_private_key(KeyAlgorithm.EC_P256)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Operator Root")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    root_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    root_pem = root_cert.public_bytes(serialization.Encoding.PEM).decode()
    status, ext = await api.call(
        "POST", "/api/v1/cas", "admin", {"kind": "external-root", "id": "op-root", "certificate": root_pem}
    )
    assert status == 201 and ext["kind"] == "external-root"
    status, body = await api.call(
        "POST", "/api/v1/cas", "admin", {"kind": "external-root", "id": "op-2", "certificate": "garbage"}
    )
    assert status == 400
    status, pending = await api.call(
        "POST",
        "/api/v1/cas",
        "admin",
        {
            "kind": "external-issuing",
            "id": "op-issuing",
            "parent": "op-root",
            "subject": "CN=Op Issuing",
            "services": ["privatessl"],
        },
    )
    assert status == 201 and pending["state"] == "csr-ready"
    status, csr = await api.call("GET", "/api/v1/cas/op-issuing/csr", "admin")
    assert status == 200 and "BEGIN CERTIFICATE REQUEST" in csr["csr_pem"]
    status, body = await api.call("GET", "/api/v1/cas/issuing/csr", "admin")
    assert status == 409, "only issuing CAs under an external root have a CSR"
    request = x509.load_pem_x509_csr(csr["csr_pem"].encode())
    signed = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(name)
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(request.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    status, body = await api.call(
        "PUT", "/api/v1/cas/op-issuing/certificate", "admin", {"certificate": root_pem}
    )
    assert "public key" in body["error"]["message"]
    assert status == 400, "the root's own certificate does not carry this CA's key"
    signed_b64 = base64.b64encode(signed.public_bytes(serialization.Encoding.DER)).decode()
    status, active = await api.call(
        "PUT", "/api/v1/cas/op-issuing/certificate", "admin", {"certificate": signed_b64}
    )
    assert status == 200 and active["state"] == "active", active
    status, issued = await api.call(
        "POST",
        "/api/v1/certificates",
        "officer",
        {"ca": "op-issuing", "profile": "privatessl-tls-server", "csr": csr_pem(dns=["x.example"])},
    )
    assert status == 201
    leaf = x509.load_pem_x509_certificate(issued["certificate_pem"].encode())
    der = serialization.Encoding.DER
    openssl_verify(
        tmp_path, root_cert.public_bytes(der), [signed.public_bytes(der)], [leaf.public_bytes(der)]
    )


async def test_bindings(api: Api) -> None:
    status, protocols = await api.call("GET", "/api/v1/protocols", "auditor")
    assert status == 200 and [p["name"] for p in protocols["items"]] == ["echo"]
    status, binding = await api.call(
        "PUT",
        "/api/v1/cas/issuing/bindings/echo",
        "admin",
        {
            "allowed_profiles": ["privatessl-tls-server", "privatessl-tls-client"],
            "default_profile": "privatessl-tls-client",
            "settings": {"approval": True},
        },
    )
    assert status == 200, binding
    assert binding["default_profile"] == "privatessl-tls-client" and binding["settings"] == {"approval": True}
    async with api.client.get("/echo/issuing/ping") as response:
        assert response.status == 200, "a binding made through the API serves at once"
    status, shown = await api.call("GET", "/api/v1/cas/issuing/bindings/echo", "auditor")
    assert shown["allowed_profiles"] == ["privatessl-tls-server", "privatessl-tls-client"]
    status, listing = await api.call("GET", "/api/v1/bindings?ca=issuing", "auditor")
    assert [b["protocol"] for b in listing["items"]] == ["echo"]
    status, body = await api.call(
        "PUT", "/api/v1/cas/issuing/bindings/echo", "admin", {"settings": {"colour": "red"}}
    )
    assert status == 400 and "colour" in body["error"]["message"]
    status, body = await api.call(
        "PUT",
        "/api/v1/cas/issuing/bindings/echo",
        "admin",
        {"allowed_profiles": ["privatessl-tls-server"], "default_profile": "smime-key-encipherment"},
    )
    assert status == 400
    status, body = await api.call("PUT", "/api/v1/cas/issuing/bindings/teleport", "admin", {})
    assert status == 404
    status, body = await api.call("PUT", "/api/v1/cas/root/bindings/echo", "admin", {})
    assert status == 400
    status, body = await api.call("PUT", "/api/v1/cas/issuing/bindings/echo", "officer", {})
    assert status == 403
    status, body = await api.call("DELETE", "/api/v1/cas/issuing/bindings/echo", "admin")
    assert status == 200
    async with api.client.get("/echo/issuing/ping") as response:
        assert response.status == 404
    status, body = await api.call("DELETE", "/api/v1/cas/issuing/bindings/echo", "admin")
    assert status == 404
    status, body = await api.call("GET", "/api/v1/cas/issuing/bindings/echo", "auditor")
    assert status == 404


async def test_credentials(api: Api) -> None:
    status, token = await api.call(
        "POST", "/api/v1/credentials", "admin", {"kind": "token", "name": "ci", "role": "auditor"}
    )
    assert status == 201 and token["token"].startswith("ceg_") and token["credential"]["role"] == "auditor"
    async with api.client.get(
        "/api/v1/whoami", headers={"Authorization": f"Bearer {token['token']}"}
    ) as response:
        assert (await response.json())["name"] == "ci"
    status, basic = await api.call(
        "POST",
        "/api/v1/credentials",
        "admin",
        {"kind": "basic", "name": "device1", "ca": "issuing", "protocol": "est"},
    )
    assert (
        status == 201
        and basic["password"]
        and basic["credential"]["scope"] == {"ca": "issuing", "protocol": "est"}
    )
    assert (await api.services.credentials.verify_basic("device1", basic["password"])).name == "device1"
    status, eab = await api.call(
        "POST", "/api/v1/credentials", "admin", {"kind": "eab", "name": "acme-team", "ca": "issuing"}
    )
    assert status == 201 and eab["kid"] and eab["hmac_key"]
    status, secret = await api.call(
        "POST",
        "/api/v1/credentials",
        "admin",
        {"kind": "shared-secret", "name": "ref-1", "ca": "issuing", "protocol": "cmp", "password": "s3cret"},
    )
    assert status == 201 and secret["secret"] == "s3cret"
    status, p12 = await api.call(
        "POST",
        "/api/v1/credentials",
        "admin",
        {"kind": "client-cert", "name": "gw-client", "role": "officer", "ca": "issuing"},
    )
    assert status == 201 and p12["credential"]["kind"] == "client-cert"
    from cryptography.hazmat.primitives.serialization import pkcs12

    bundle = pkcs12.load_pkcs12(base64.b64decode(p12["p12"]), p12["p12_password"].encode())
    assert bundle.cert is not None and bundle.key is not None
    cert_der = bundle.cert.certificate.public_bytes(serialization.Encoding.DER)
    assert (await api.services.credentials.verify_client_certificate(cert_der)).name == "gw-client"

    status, body = await api.call(
        "POST", "/api/v1/credentials", "admin", {"kind": "client-cert", "name": "x"}
    )
    assert status == 400 and body["error"]["target"] == "ca"
    status, body = await api.call(
        "POST", "/api/v1/credentials", "admin", {"kind": "token", "name": "ci", "role": "emperor"}
    )
    assert status == 400
    status, body = await api.call(
        "POST", "/api/v1/credentials", "admin", {"kind": "basic", "name": "device1"}
    )
    assert status == 409, "Basic usernames are unique"
    status, body = await api.call("POST", "/api/v1/credentials", "officer", {"kind": "token", "name": "mine"})
    assert status == 403

    status, listing = await api.call("GET", "/api/v1/credentials", "auditor")
    names = {c["name"] for c in listing["items"]}
    assert {"ci", "device1", "acme-team", "ref-1", "gw-client"} <= names
    assert all("secret" not in c and "token" not in c for c in listing["items"])
    status, listing = await api.call("GET", "/api/v1/credentials?kind=token", "auditor")
    assert {c["kind"] for c in listing["items"]} == {"token"}
    status, body = await api.call("GET", "/api/v1/credentials?kind=magic", "auditor")
    assert status == 400
    status, body = await api.call("GET", "/api/v1/credentials", "officer")
    assert status == 403

    status, body = await api.call("DELETE", f"/api/v1/credentials/{token['credential']['id']}", "admin")
    assert status == 200
    async with api.client.get(
        "/api/v1/whoami", headers={"Authorization": f"Bearer {token['token']}"}
    ) as response:
        assert response.status == 401, "a revoked token is refused at once on this worker"
    status, body = await api.call("DELETE", f"/api/v1/credentials/{token['credential']['id']}", "admin")
    assert status == 404
    status, listing = await api.call("GET", "/api/v1/credentials?include_revoked=true", "auditor")
    assert any(c["revoked_at"] for c in listing["items"])


async def test_approvals(api: Api) -> None:
    requester = Requester("est", "device-7")
    pending = await api.services.approvals.submit(
        IssuanceRequest(
            ca="issuing",
            profile="privatessl-tls-server",
            requester=requester,
            csr=make_csr(dns=["p.example"]),
        )
    )
    second = await api.services.approvals.submit(
        IssuanceRequest(
            ca="issuing",
            profile="privatessl-tls-server",
            requester=requester,
            csr=make_csr(dns=["q.example"]),
        )
    )
    status, listing = await api.call("GET", "/api/v1/approvals", "auditor")
    assert status == 200 and {a["id"] for a in listing["items"]} == {pending.id, second.id}
    status, one = await api.call("GET", f"/api/v1/approvals/{pending.id}", "officer")
    assert one["state"] == "pending" and one["requester"] == "device-7"
    status, body = await api.call("POST", f"/api/v1/approvals/{pending.id}/approve", "auditor")
    assert status == 403
    status, approved = await api.call("POST", f"/api/v1/approvals/{pending.id}/approve", "officer")
    assert status == 200 and approved["state"] == "issued" and approved["serial"]
    assert await api.services.store.certificates.get(approved["serial"]) is not None
    status, body = await api.call("POST", f"/api/v1/approvals/{pending.id}/approve", "officer")
    assert status == 409
    status, body = await api.call("POST", f"/api/v1/approvals/{second.id}/reject", "officer", {})
    assert status == 400 and body["error"]["target"] == "reason"
    status, rejected = await api.call(
        "POST", f"/api/v1/approvals/{second.id}/reject", "officer", {"reason": "unknown host"}
    )
    assert status == 200 and rejected["state"] == "rejected" and rejected["reason"] == "unknown host"
    status, listing = await api.call("GET", "/api/v1/approvals?state=all", "auditor")
    assert {a["state"] for a in listing["items"]} == {"issued", "rejected"}
    status, body = await api.call("GET", "/api/v1/approvals?state=maybe", "auditor")
    assert status == 400
    status, body = await api.call("GET", "/api/v1/approvals/nothing", "auditor")
    assert status == 404


async def test_audit_and_catalogue(api: Api) -> None:
    status, audit = await api.call("GET", "/api/v1/audit?limit=5", "auditor")
    assert status == 200 and len(audit["items"]) == 5 and audit["next_after"] == audit["items"][-1]["seq"]
    status, more = await api.call(
        "GET", f"/api/v1/audit?after={audit['next_after']}&action=credential.created", "auditor"
    )
    assert all(e["action"] == "credential.created" for e in more["items"]) and more["items"]
    status, body = await api.call("GET", "/api/v1/audit", "officer")
    assert status == 403, "officers do not read the audit log"
    status, verified = await api.call("GET", "/api/v1/audit/verify", "auditor")
    assert status == 200 and verified["ok"] is True and verified["problems"] == []
    seq, digest = await api.services.store.audit.head()
    status, anchored = await api.call("GET", f"/api/v1/audit/verify?anchor={seq}:{digest}", "auditor")
    assert status == 200 and anchored["ok"] is True
    status, wrong = await api.call("GET", f"/api/v1/audit/verify?anchor={seq}:{'0' * 64}", "auditor")
    assert status == 200 and wrong["ok"] is False and wrong["problems"][0]["seq"] == seq
    status, future = await api.call("GET", f"/api/v1/audit/verify?anchor={seq + 5}:{digest}", "auditor")
    assert future["problems"][-1]["seq"] == seq + 5 and "gone" in future["problems"][-1]["problem"]
    status, body = await api.call("GET", "/api/v1/audit/verify?anchor=12:nothex", "auditor")
    assert status == 400 and "SEQ:HASH" in body["error"]["message"]
    status, profiles = await api.call("GET", "/api/v1/profiles", "auditor")
    ids = {p["id"] for p in profiles["items"]}
    assert "privatessl-tls-server" in ids and "basic-ca-root" not in ids and "internal-api-client" not in ids
    status, body = await api.call("GET", "/api/v1/audit?limit=many", "auditor")
    assert status == 400 and body["error"]["target"] == "limit"
