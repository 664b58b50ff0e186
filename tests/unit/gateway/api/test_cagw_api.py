"""/cagw/v1 through the real app on SQLite and PostgreSQL, with the request shapes the
CA Gateway's known clients send (Vault and SPIRE plugins, Ansible, shell utility,
Keyfactor), and every documented error path."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.support.pki import make_csr, openssl_verify
from tests.unit.gateway.api.conftest import Api

CA = "/cagw/v1/certificate-authorities/issuing"


def b64csr(**kw: object) -> str:
    return base64.b64encode(make_csr(**kw)).decode()  # type: ignore[arg-type]


async def enroll(api: Api, body: dict, role: str = "officer") -> tuple[int, dict]:
    return await api.call("POST", f"{CA}/enrollments", role, body)  # type: ignore[return-value]


async def test_cas_and_profiles(api: Api) -> None:
    status, listing = await api.call("GET", "/cagw/v1/certificate-authorities", "auditor")
    assert status == 200 and listing["type"] == "CAListResponse"
    ids = {c["id"]: c for c in listing["caList"]}
    assert set(ids) == {"root", "issuing"} and "certificate" not in ids["issuing"]
    assert ids["issuing"]["properties"]["type"] == "issuing" and ids["root"]["properties"]["type"] == "root"
    # the shell utility's call: certificates on, to tell roots from issuing CAs
    status, listing = await api.call(
        "GET", "/cagw/v1/certificate-authorities?%24fields=caList.certificate.certificateData", "auditor"
    )
    for ca in listing["caList"]:
        x509.load_der_x509_certificate(base64.b64decode(ca["certificate"]["certificateData"]))

    status, detail = await api.call("GET", CA, "auditor")
    assert detail["type"] == "CAResponse" and detail["ca"]["id"] == "issuing"
    assert "certificate" not in detail["ca"] and "chain" not in detail["ca"]
    # the SPIRE plugin's call
    status, detail = await api.call("GET", f"{CA}?$fields=ca.certificate,ca.chain", "auditor")
    own = x509.load_der_x509_certificate(base64.b64decode(detail["ca"]["certificate"]["certificateData"]))
    chain = [
        x509.load_der_x509_certificate(base64.b64decode(c["certificateData"])) for c in detail["ca"]["chain"]
    ]
    assert own.subject.rfc4514_string().startswith("CN=Test Issuing")
    assert [c.subject == c.issuer for c in chain] == [True], "the chain above an issuing CA is its root"
    status, props = await api.call("GET", f"{CA}/properties", "auditor")
    assert (
        props["type"] == "CAPropertiesResponse"
        and props["CAPropertiesInformation"]["properties"]["type"] == "issuing"
    )

    status, profiles = await api.call("GET", f"{CA}/profiles", "auditor")
    assert profiles["type"] == "ProfilesResponse"
    ids_ = [p["id"] for p in profiles["profiles"]]
    assert (
        "privatessl-tls-server" in ids_
        and "internal-api-client" not in ids_
        and "basic-ca-subord" not in ids_
    )
    status, profile = await api.call("GET", f"{CA}/profiles/privatessl-tls-server", "auditor")
    p = profile["profile"]
    assert profile["type"] == "ProfileResponse" and p["id"] == "privatessl-tls-server"
    assert {"name": "cn", "description": "Common name", "required": False} in p["subjectVariableRequirements"]
    assert {"type": "dNSName", "required": False} in p["subjectAltNameRequirements"]
    status, body = await api.call("GET", f"{CA}/profiles/internal-api-client", "auditor")
    assert status == 404 and body["type"] == "ErrorResponse"
    status, profiles = await api.call("GET", "/cagw/v1/certificate-authorities/root/profiles", "auditor")
    assert profiles["profiles"] == []
    # a disabled service's profiles are not offered
    await api.services.authority.set_services("issuing", ["est"])
    status, profiles = await api.call("GET", f"{CA}/profiles", "auditor")
    assert {p["service"] for p in (x["properties"] for x in profiles["profiles"])} == {"est"}
    status, body = await api.call("GET", "/cagw/v1/certificate-authorities/nope", "auditor")
    assert status == 404 and body["type"] == "ErrorResponse" and body["error"]["code"] == "not_found"


async def test_enrollment_formats(api: Api, tmp_path: Path) -> None:
    # Vault's sign: X509, subjectVariables in DN-string order, a validity duration
    status, x509_body = await enroll(
        api,
        {
            "profileId": "privatessl-tls-server",
            "requiredFormat": {"format": "X509", "protection": None},
            "csr": b64csr(cn="ignored", dns=["csr.example"]),
            "subjectVariables": [{"type": "cn", "value": "vault.example"}, {"type": "o", "value": "Example"}],
            "subjectAltNames": [
                {"type": "dNSName", "value": "vault.example"},
                {"type": "iPAddress", "value": "192.0.2.7"},
            ],
            "optionalCertificateRequestDetails": {"validityPeriod": "PT60M"},
            "includeCa": True,
        },
    )
    assert status == 200, x509_body
    enrollment = x509_body["enrollment"]
    assert x509_body["type"] == "EnrollmentResponse" and enrollment["status"] == "ISSUED"
    cert = x509.load_der_x509_certificate(base64.b64decode(enrollment["body"]))
    assert cert.subject.rfc4514_string() == "CN=vault.example,O=Example"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in sans] == ["vault.example", "192.0.2.7"]
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() <= 3600 + 60
    assert enrollment["serialNumber"] == format(cert.serial_number, "x")
    start, _, end = enrollment["validityPeriod"].partition("/")
    assert start.endswith("Z") and end.endswith("Z")
    chain = [base64.b64decode(c["certificateData"]) for c in enrollment["chain"]]
    der = serialization.Encoding.DER
    openssl_verify(tmp_path, chain[-1], chain[:-1], [cert.public_bytes(der)])

    # the shell utility's CSR enrollment: PEM out, subjectDn "" (= the CSR's), SANs from the form
    status, pem_body = await enroll(
        api,
        {
            "profileId": "privatessl-tls-client",
            "requiredFormat": {"format": "PEM"},
            "csr": b64csr(cn="shell.example"),
            "optionalCertificateRequestDetails": {"subjectDn": ""},
            "subjectAltNames": [],
        },
    )
    assert status == 200, pem_body
    pem_cert = x509.load_pem_x509_certificate(pem_body["enrollment"]["body"].encode())
    assert pem_cert.subject.rfc4514_string() == "CN=shell.example" and "chain" not in pem_body["enrollment"]

    # SPIRE-style: subjectDn in Go's form, SANs from the CSR, seconds
    status, spire = await enroll(
        api,
        {
            "profileId": "privatessl-tls-server",
            "requiredFormat": {"format": "X509"},
            "csr": b64csr(cn="x", dns=["spire.example"]),
            "optionalCertificateRequestDetails": {
                "subjectDn": "cn=spire, o=Example Org",
                "useSANFromCSR": True,
                "validityPeriod": "PT7200S",
            },
        },
    )
    assert status == 200, spire
    spire_cert = x509.load_der_x509_certificate(base64.b64decode(spire["enrollment"]["body"]))
    assert spire_cert.subject.rfc4514_string() == "CN=spire,O=Example Org"
    assert spire_cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName) == ["spire.example"]

    # server-side key generation (Vault's issue; the shell utility's P12 enrollment)
    status, p12_body = await enroll(
        api,
        {
            "profileId": "privatessl-tls-server",
            "requiredFormat": {
                "format": "PKCS12",
                "protection": {"type": "PasswordProtection", "password": "ChangeMe2"},
            },
            "subjectVariables": [{"type": "cn", "value": "keygen.example"}],
            "subjectAltNames": [{"type": "dNSName", "value": "keygen.example"}],
            "keyAlgorithm": "rsa-2048",
        },
    )
    assert status == 200, p12_body
    bundle = pkcs12.load_pkcs12(base64.b64decode(p12_body["enrollment"]["body"]), b"ChangeMe2")
    assert bundle.key is not None and bundle.key.key_size == 2048  # type: ignore[union-attr]
    assert bundle.cert is not None and len(bundle.additional_certs) == 2
    assert bundle.cert.certificate.subject.rfc4514_string() == "CN=keygen.example"

    # requested extension (certificate policies) on a profile that accepts it
    policies = x509.CertificatePolicies(
        [x509.PolicyInformation(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), None)]
    )
    status, ext_body = await enroll(
        api,
        {
            "profileId": "privatessl-tls-server",
            "csr": b64csr(dns=["pol.example"]),
            "optionalCertificateRequestDetails": {
                "extensions": [
                    {
                        "oid": "2.5.29.32",
                        "critical": False,
                        "value": base64.b64encode(policies.public_bytes()).decode(),
                    }
                ]
            },
        },
    )
    assert status == 200, ext_body
    issued = x509.load_der_x509_certificate(base64.b64decode(ext_body["enrollment"]["body"]))
    assert issued.extensions.get_extension_for_class(x509.CertificatePolicies).value == policies


async def test_enrollment_refusals(api: Api) -> None:
    good = {"profileId": "privatessl-tls-server", "csr": b64csr(dns=["a.example"])}
    cases = [
        ({}, 400, "profileId"),
        ({**good, "requiredFormat": {"format": "JKS"}}, 400, "requiredFormat.format"),
        ({"profileId": "privatessl-tls-server"}, 400, "csr"),
        ({**good, "requiredFormat": {"format": "PKCS12"}}, 400, "csr"),
        (
            {"profileId": "privatessl-tls-server", "requiredFormat": {"format": "PKCS12"}},
            400,
            "requiredFormat.protection.password",
        ),
        ({**good, "csr": "%%%"}, 400, "csr"),
        ({**good, "csr": base64.b64encode(b"junk").decode()}, 400, None),
        (
            {**good, "subjectVariables": [{"type": "favouriteColour", "value": "red"}]},
            400,
            "subjectVariables[0].type",
        ),
        ({**good, "subjectAltNames": [{"type": "dNSName", "value": "bad name!"}]}, 400, None),
        ({**good, "subjectAltNames": [{"type": "x400Address", "value": "x"}]}, 400, "subjectAltNames[0]"),
        ({**good, "optionalCertificateRequestDetails": {"validityPeriod": "forever"}}, 400, None),
        ({**good, "optionalCertificateRequestDetails": {"subjectDn": "nonsense"}}, 400, None),
        (
            {
                **good,
                "optionalCertificateRequestDetails": {"extensions": [{"oid": "not.an.oid", "value": "AA=="}]},
            },
            400,
            None,
        ),
        (
            {
                **good,
                "optionalCertificateRequestDetails": {"extensions": [{"oid": "2.5.29.37", "value": "MAA="}]},
            },
            422,
            None,
        ),
        ({**good, "profileId": "nope"}, 404, None),
        ({**good, "profileId": "basic-ca-subord"}, 422, None),
        ({**good, "keyAlgorithm": "dsa-1024"}, 400, "keyAlgorithm"),
        ({**good, "subjectVariables": "cn=x"}, 400, "subjectVariables"),
    ]
    for body, status_wanted, target in cases:
        status, answer = await enroll(api, body)
        assert status == status_wanted, (body, answer)
        assert answer["type"] == "ErrorResponse" and answer["error"]["message"]
        if target:
            assert answer["error"]["target"] == target, answer
    # CSR for a disabled profile
    await api.services.authority.set_services("issuing", ["est"])
    status, answer = await enroll(api, good)
    assert status == 422 and answer["error"]["code"] == "profile_not_enabled"
    # unknown CA; a root; bad JSON
    status, answer = await api.call(
        "POST", "/cagw/v1/certificate-authorities/nope/enrollments", "admin", good
    )
    assert status == 404
    status, answer = await api.call(
        "POST", "/cagw/v1/certificate-authorities/root/enrollments", "admin", good
    )
    assert status == 422
    async with api.client.post(f"{CA}/enrollments", data=b"{", headers=api.auth("officer")) as response:
        body = await response.json()
        assert (
            response.status == 400 and body["type"] == "ErrorResponse" and body["error"]["code"] == "bad_json"
        )
    assert await api.services.store.certificates.count(ca="issuing") == 0


async def test_certificate_and_actions(api: Api) -> None:
    status, body = await enroll(api, {"profileId": "privatessl-tls-server", "csr": b64csr(cn="act.example")})
    serial = body["enrollment"]["serialNumber"]
    status, cert = await api.call("GET", f"{CA}/certificates/{serial}", "auditor")
    assert status == 200 and cert["type"] == "CertificateResponse"
    assert cert["certificate"]["status"] == "normal" and cert["certificate"]["serialNumber"] == serial
    assert cert["certificate"]["signatureAlgID"] == "1.2.840.10045.4.3.2"
    status, cert = await api.call("GET", f"{CA}/certificates/{'0' * 8}{serial.upper()}", "auditor")
    assert status == 200, "leading zeros and upper case, as the shell utility's example"
    status, body = await api.call(
        "GET", "/cagw/v1/certificate-authorities/root/certificates/" + serial, "auditor"
    )
    assert status == 404, "a certificate is found under its own CA only"
    status, body = await api.call("GET", f"{CA}/certificates/zz", "auditor")
    assert status == 400

    async def act(action: dict, target: str = serial) -> tuple[int, dict]:
        return await api.call("POST", f"{CA}/certificates/{target}/actions", "officer", {"action": action})  # type: ignore[return-value]

    status, held = await act({"type": "HoldAction", "comment": "suspended"})
    assert status == 200 and held["type"] == "ActionResponse" and held["action"]["status"] == "COMPLETED"
    status, cert = await api.call("GET", f"{CA}/certificates/{serial}", "auditor")
    assert (
        cert["certificate"]["status"] == "held"
        and cert["certificate"]["revocationInfo"]["reason"] == "certificateHold"
    )
    status, body = await act({"type": "HoldAction"})
    assert status == 409
    status, again = await act({"type": "HoldAction", "succeedIfAlreadyInRequestedState": True})
    assert status == 200 and again["action"]["status"] == "COMPLETED"
    status, body = await act({"type": "UnholdAction"})
    assert status == 200
    # Keyfactor's revoke: issueCrl as the string "true"
    status, revoked = await act(
        {
            "type": "RevokeAction",
            "reason": "keyCompromise",
            "comment": "Revoked from Keyfactor",
            "issueCrl": "true",
        }
    )
    assert status == 200 and revoked["action"]["reason"] == "keyCompromise"
    status, cert = await api.call("GET", f"{CA}/certificates/{serial}", "auditor")
    assert (
        cert["certificate"]["status"] == "revoked"
        and cert["certificate"]["revocationInfo"]["reason"] == "keyCompromise"
    )
    status, body = await act({"type": "RevokeAction", "reason": "superseded"})
    assert status == 409
    status, body = await act(
        {"type": "RevokeAction", "reason": "superseded", "succeedIfAlreadyInRequestedState": True}
    )
    assert status == 200
    status, body = await act({"type": "UnholdAction", "succeedIfAlreadyInRequestedState": True})
    assert status == 409, "a revoked certificate is not 'already unheld'"

    status, body = await act({"type": "RenewAction"})
    assert status == 501 and body["error"]["code"] == "not_implemented"
    status, body = await act({"type": "RevokeAction", "reason": "caCompromise"})
    assert status == 400
    status, body = await act({"type": "RevokeAction", "reason": "whatever"})
    assert status == 400 and body["error"]["target"] == "action.reason"
    status, body = await act({"type": "Explode"})
    assert status == 400
    status, body = await act({"type": "RevokeAction"}, target="abc123")
    assert status == 404
    status, body = await api.call(
        "POST", f"{CA}/certificates/{serial}/actions", "officer", {"kind": "revoke"}
    )
    assert status == 400 and body["error"]["target"] == "action"


async def test_subject_actions(api: Api) -> None:
    serials = []
    for _ in range(2):
        status, body = await enroll(
            api, {"profileId": "privatessl-tls-server", "csr": b64csr(cn="same.example")}
        )
        serials.append(body["enrollment"]["serialNumber"])
    await enroll(api, {"profileId": "privatessl-tls-server", "csr": b64csr(cn="other.example")})
    dn = quote("CN=same.example", safe="")
    status, result = await api.call(
        "POST",
        f"{CA}/subjects/{dn}/actions",
        "officer",
        {"action": {"type": "RevokeAction", "reason": "superseded"}},
    )
    assert status == 200, result
    assert sorted(result["action"]["properties"]["serialNumbers"]) == sorted(serials)
    for serial in serials:
        record = await api.services.store.certificates.get(serial)
        assert record is not None and record.status.value == "revoked"
    status, body = await api.call(
        "POST", f"{CA}/subjects/{dn}/actions", "officer", {"action": {"type": "RevokeAction"}}
    )
    assert status == 404, "no live certificate of that subject is left"
    status, body = await api.call(
        "POST",
        f"{CA}/subjects/{quote('CN=a/b', safe='')}/actions",
        "officer",
        {"action": {"type": "HoldAction"}},
    )
    assert status == 404


async def test_certificate_events_feed(api: Api) -> None:
    serials = []
    for i in range(5):
        status, body = await enroll(
            api, {"profileId": "privatessl-tls-server", "csr": b64csr(cn=f"ev{i}.example")}
        )
        serials.append(body["enrollment"]["serialNumber"])
    await api.call(
        "POST", f"{CA}/certificates/{serials[0]}/actions", "officer", {"action": {"type": "RevokeAction"}}
    )

    seen: list[tuple[str, str]] = []
    status, page = await api.call(
        "GET", f"{CA}/certificate-events?startDate=2000-01-01T00:00:00.000Z&preferredPageSize=2", "auditor"
    )
    assert status == 200 and page["type"] == "CertificateEventsResponse"
    pages = 0
    while True:
        pages += 1
        assert page["morePages"] == page["hasMore"] and len(page["events"]) <= 2
        seen += [(e["action"], e["serialNumber"]) for e in page["events"]]
        for e in page["events"]:
            x509.load_der_x509_certificate(base64.b64decode(e["certificate"]))
        if not page["morePages"]:
            break
        # Keyfactor sends only the index; the shell utility sends both: same pages
        status, page = await api.call(
            "GET",
            f"{CA}/certificate-events?nextPageIndex={page['nextPageIndex']}&startDate=1999-01-01",
            "auditor",
        )
        assert status == 200
    assert seen == [("issued", s) for s in serials] + [("revoked", serials[0])] and pages == 3
    # the last index resumes: nothing new yet, then the next event
    status, tail = await api.call(
        "GET", f"{CA}/certificate-events?nextPageIndex={page['nextPageIndex']}", "auditor"
    )
    assert tail["events"] == [] and tail["morePages"] is False
    await api.call(
        "POST", f"{CA}/certificates/{serials[1]}/actions", "officer", {"action": {"type": "HoldAction"}}
    )
    status, tail = await api.call(
        "GET", f"{CA}/certificate-events?nextPageIndex={tail['nextPageIndex']}", "auditor"
    )
    assert [(e["action"], e["serialNumber"], e["reason"]) for e in tail["events"]] == [
        ("held", serials[1], "certificateHold")
    ]
    # Keyfactor's field filter; a start date after everything; page size capped at 50
    status, slim = await api.call("GET", f"{CA}/certificate-events?%24fields=-events.certificate", "auditor")
    assert slim["events"] and all("certificate" not in e for e in slim["events"])
    status, empty = await api.call("GET", f"{CA}/certificate-events?startDate=2999-01-01", "auditor")
    assert empty["events"] == []
    status, capped = await api.call("GET", f"{CA}/certificate-events?preferredPageSize=5000", "auditor")
    assert capped["metadata"]["currentLimit"] == 50
    for query, target in (
        ("preferredPageSize=0", "preferredPageSize"),
        ("preferredPageSize=lots", "preferredPageSize"),
        ("nextPageIndex=forged", "nextPageIndex"),
        ("startDate=yesterday", "startDate"),
    ):
        status, body = await api.call("GET", f"{CA}/certificate-events?{query}", "auditor")
        assert status == 400 and body["error"]["target"] == target, query
    status, body = await api.call(
        "GET", "/cagw/v1/certificate-authorities/nope/certificate-events", "auditor"
    )
    assert status == 404


async def test_unknown_routes_and_not_implemented(api: Api) -> None:
    for method, path, wanted in (
        ("GET", "/cagw/v1/certificate-authorities/issuing/domains", 501),
        ("POST", "/cagw/v1/certificate-authorities/issuing/recovery-requests", 501),
        ("GET", "/cagw/v1/capabilities", 404),
        ("PUT", "/cagw/v1/certificate-authorities/issuing", 405),
        ("GET", "/api/v1/nothing-here", 404),
        ("PATCH", "/api/v1/cas", 405),
    ):
        async with api.client.request(method, path, headers=api.auth("admin")) as response:
            body = await response.json()
            assert response.status == wanted, (method, path, body)
            if path.startswith("/cagw"):
                assert body["type"] == "ErrorResponse"
            else:
                assert body["error"]["code"]
            if wanted == 405:
                assert response.headers["Allow"]


async def test_a_bug_is_a_500_in_the_api_format_without_details(sqlite_api: Api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broken() -> list:  # type: ignore[type-arg]
        raise RuntimeError("secret internals")

    monkeypatch.setattr(sqlite_api.services.catalogue, "public", broken)
    status, body = await sqlite_api.call("GET", f"{CA}/profiles", "auditor")
    assert status == 500 and body["type"] == "ErrorResponse" and "secret" not in str(body)
    status, body = await sqlite_api.call("GET", "/api/v1/profiles", "auditor")
    assert status == 500 and body["error"]["code"] == "internal" and "secret" not in str(body)
