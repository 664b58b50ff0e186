"""Edge cases driven by certbot's `acme` library (and, where the library will not send
something wrong on purpose, hand-made JWS requests) against the live gateway."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import josepy as jose
import pytest
from acme import challenges, client, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ca_core.model import CertStatus, RevocationReason
from ca_core.store import CertificateQuery
from ca_core.store.spent import SharedSpentTokens
from tests.interop.acme.support import (
    AcmeSetup,
    Http01Responder,
    RawPayload,
    account_key,
    acme_client,
    alg_for,
    cert_key_and_csr,
    chain_ders,
    dns01_answers,
    fresh_nonce,
    http01_answers,
    in_thread,
    issue,
    raw_post,
    signed_body,
)
from tests.support.pki import openssl_verify

ERR = "urn:ietf:params:acme:error:"


async def post(
    acme_c: client.ClientV2,
    url: str,
    payload: Any,
    *,
    content_type: str = "application/jose+json",
    jws_url: str | None = None,
    **jws: Any,
) -> Any:
    """A hand-made signed POST, built and sent in a thread (it fetches a nonce first)."""

    def run() -> Any:
        return raw_post(acme_c, url, signed_body(acme_c, jws_url or url, payload, **jws), content_type)

    return await in_thread(run)


def root_der(setup: AcmeSetup) -> bytes:
    return x509.load_pem_x509_certificate(setup.root_pem.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )


def leaf_of(order: messages.OrderResource) -> x509.Certificate:
    return x509.load_der_x509_certificate(chain_ders(order.fullchain_pem)[0])


@pytest.fixture
async def responder(acme: AcmeSetup):  # type: ignore[no-untyped-def]
    r = await Http01Responder(acme.http01_port).start()
    yield r
    await r.stop()


def http01(responder: Http01Responder):  # type: ignore[no-untyped-def]
    return lambda c, o: http01_answers(c, o, responder)


async def test_http01_order_issues_a_verifiable_certificate(
    acme: AcmeSetup, responder: Http01Responder, tmp_path: Path
) -> None:
    acme_c = await in_thread(acme_client, acme)
    _, csr = cert_key_and_csr(["web.example.test", "www.example.test"])
    order = await in_thread(issue, acme_c, csr, http01(responder))
    ders = chain_ders(order.fullchain_pem)
    leaf = x509.load_der_x509_certificate(ders[0])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == ["web.example.test", "www.example.test"]
    openssl_verify(tmp_path, root_der(acme), ders[1:], ders[:1])
    # The certificate is in the CA's store, issued to this ACME account.
    record = await acme.live.services.store.certificates.get(format(leaf.serial_number, "x"))
    assert record is not None and record.requester["protocol"] == "acme"
    assert acme_c.net.account["uri"].endswith("/" + str(record.requester["principal"]))


async def test_ip_identifier_order_rfc8738(
    acme: AcmeSetup, responder: Http01Responder, tmp_path: Path
) -> None:
    acme_c = await in_thread(acme_client, acme)
    _, csr = cert_key_and_csr([], ips=["127.0.0.1"])
    order = await in_thread(issue, acme_c, csr, http01(responder))
    san = leaf_of(order).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


async def test_profile_field_selects_the_profile(acme: AcmeSetup, responder: Http01Responder) -> None:
    acme_c = await in_thread(acme_client, acme)
    assert set(acme_c.directory.meta.profiles) == {
        "privatessl-tls-server",
        "privatessl-tls-client",
        "privatessl-tls-client-server",
    }
    _, csr = cert_key_and_csr(["client.example.test"])
    order = await in_thread(issue, acme_c, csr, http01(responder), "privatessl-tls-client")
    eku = leaf_of(order).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(messages.Error) as refused:
        await in_thread(acme_c.new_order, csr, "smime-key-encipherment")
    assert refused.value.typ == ERR + "invalidProfile"


async def test_wildcard_order_is_proven_with_dns01(acme: AcmeSetup, tmp_path: Path) -> None:
    acme_c = await in_thread(acme_client, acme)
    _, csr = cert_key_and_csr(["*.wild.example.test", "wild.example.test"])
    order = await in_thread(acme_c.new_order, csr)
    by_name = {(a.body.identifier.value, a.body.wildcard): a for a in order.authorizations}
    wildcard = by_name[("wild.example.test", True)]
    # A wildcard can only be proven through DNS (RFC 8555 7.1.4).
    assert [type(c.chall) for c in wildcard.body.challenges] == [challenges.DNS01]
    assert len(by_name[("wild.example.test", None)].body.challenges) == 3

    def solve(c: client.ClientV2, o: messages.OrderResource) -> list[Any]:
        return dns01_answers(c, o, acme.dns)

    # Both authorizations share the TXT name: challtestsrv keeps both values.
    for challb, response in solve(acme_c, order):
        await in_thread(acme_c.answer_challenge, challb, response)
    done = await in_thread(acme_c.poll_and_finalize, order, dt.datetime.now() + dt.timedelta(seconds=30))
    ders = chain_ders(done.fullchain_pem)
    san = x509.load_der_x509_certificate(ders[0]).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert sorted(san.value.get_values_for_type(x509.DNSName)) == ["*.wild.example.test", "wild.example.test"]
    openssl_verify(tmp_path, root_der(acme), ders[1:], ders[:1])


async def test_failed_http01_makes_authorization_and_order_invalid(
    acme: AcmeSetup, responder: Http01Responder
) -> None:
    acme_c = await in_thread(acme_client, acme)
    _, csr = cert_key_and_csr(["wrong.example.test"])
    order = await in_thread(acme_c.new_order, csr)
    for challb, response in http01_answers(acme_c, order, responder):
        responder.tokens[challb.chall.encode("token")] = "not-the-key-authorization"
        await in_thread(acme_c.answer_challenge, challb, response)
    authz, _ = await in_thread(acme_c.poll, order.authorizations[0])
    assert authz.body.status == messages.STATUS_INVALID
    failed = next(c for c in authz.body.challenges if c.status == messages.STATUS_INVALID)
    assert failed.error.typ == ERR + "incorrectResponse"
    with pytest.raises(errors.ValidationError):
        await in_thread(acme_c.poll_authorizations, order, dt.datetime.now() + dt.timedelta(seconds=10))


def rollover(acme_c: client.ClientV2, new_key: jose.JWK) -> Any:
    """Account key rollover (RFC 8555 7.3.5), built by hand: the library has no call for it."""
    from acme import jws as acme_jws

    url = acme_c.directory["keyChange"]
    inner = acme_jws.JWS.sign(
        json.dumps(
            {"account": acme_c.net.account["uri"], "oldKey": acme_c.net.key.public_key().to_partial_json()}
        ).encode(),
        key=new_key,
        alg=alg_for(new_key),
        nonce=None,
        url=url,
    )
    return acme_c.net.post(url, RawPayload(inner.to_partial_json()))


async def test_key_rollover_moves_the_account_to_the_new_key(
    acme: AcmeSetup, responder: Http01Responder
) -> None:
    acme_c = await in_thread(acme_client, acme)
    account_url = acme_c.net.account["uri"]
    old_key, new_key = acme_c.net.key, account_key("rsa")
    response = await in_thread(rollover, acme_c, new_key)
    assert response.status_code == 200
    # The old key no longer finds the account; the new one does, at the same URL.
    acme_c.net.key = new_key
    acme_c.net.alg = alg_for(new_key)
    found = await in_thread(acme_c.query_registration, acme_c.net.account)
    assert found.uri == account_url
    old = client.ClientNetwork(old_key, alg=alg_for(old_key), verify_ssl=str(acme.root_pem))
    old_client = client.ClientV2(acme_c.directory, old)
    with pytest.raises(messages.Error) as gone:
        await in_thread(old_client.new_account, messages.NewRegistration(only_return_existing=True))
    assert gone.value.typ == ERR + "accountDoesNotExist"
    # The account keeps working with the new key.
    _, csr = cert_key_and_csr(["rolled.example.test"])
    await in_thread(issue, acme_c, csr, http01(responder))
    # A key that already belongs to an account cannot be rolled onto: 409 with its URL.
    other = await in_thread(acme_client, acme)
    with pytest.raises(errors.ConflictError) as taken:
        await in_thread(rollover, other, new_key)
    assert taken.value.location == account_url


async def test_account_deactivation_refuses_later_requests(acme: AcmeSetup) -> None:
    acme_c = await in_thread(acme_client, acme)
    regr = await in_thread(acme_c.deactivate_registration, acme_c.net.account)
    assert regr.body.status == "deactivated"
    _, csr = cert_key_and_csr(["after.example.test"])
    with pytest.raises(messages.Error) as refused:
        await in_thread(acme_c.new_order, csr)
    assert refused.value.typ == ERR + "unauthorized"


async def test_authorization_deactivation_invalidates_the_order(acme: AcmeSetup) -> None:
    acme_c = await in_thread(acme_client, acme)
    _, csr = cert_key_and_csr(["deact.example.test"])
    order = await in_thread(acme_c.new_order, csr)
    authz = await in_thread(acme_c.deactivate_authorization, order.authorizations[0])
    assert authz.body.status == messages.STATUS_DEACTIVATED
    response = await in_thread(acme_c._post_as_get, order.uri)
    assert response.json()["status"] == "invalid"
    # A deactivated authorization's challenges cannot be attempted any more.
    challb = authz.body.challenges[0]
    with pytest.raises(messages.Error):
        await in_thread(acme_c.answer_challenge, challb, challb.response(acme_c.net.key))


async def test_bad_csr_is_refused_and_the_order_stays_ready(
    acme: AcmeSetup, responder: Http01Responder
) -> None:
    acme_c = await in_thread(acme_client, acme)
    _, csr = cert_key_and_csr(["csr.example.test"])
    order = await in_thread(acme_c.new_order, csr)
    for challb, response in http01_answers(acme_c, order, responder):
        await in_thread(acme_c.answer_challenge, challb, response)
    deadline = dt.datetime.now() + dt.timedelta(seconds=20)
    order = await in_thread(acme_c.poll_authorizations, order, deadline)
    # A CSR naming a name the order does not have.
    _, other_csr = cert_key_and_csr(["csr.example.test", "extra.example.test"])
    with pytest.raises(messages.Error) as refused:
        await in_thread(acme_c.finalize_order, order.update(csr_pem=other_csr), deadline)
    assert refused.value.typ == ERR + "badCSR" and "extra.example.test" in str(refused.value.detail)
    # A CSR whose key is the account key.
    account_pem = acme_c.net.key.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    from acme import crypto_util

    same_key_csr = crypto_util.make_csr(account_pem, ["csr.example.test"])
    with pytest.raises(messages.Error) as refused_key:
        await in_thread(acme_c.finalize_order, order.update(csr_pem=same_key_csr), deadline)
    assert refused_key.value.typ == ERR + "badCSR"
    # Garbage instead of a CSR.
    garbage = await post(acme_c, order.body.finalize, {"csr": jose.b64.b64encode(b"\x30\x03junk").decode()})
    assert garbage.status_code == 400 and garbage.json()["type"] == ERR + "badCSR"
    # A CSR whose signature does not verify: no proof of possession (checked by the CA core).
    good = x509.load_pem_x509_csr(csr).public_bytes(serialization.Encoding.DER)
    forged = good[:-1] + bytes([good[-1] ^ 1])
    unsigned = await post(acme_c, order.body.finalize, {"csr": jose.b64.b64encode(forged).decode()})
    assert unsigned.status_code == 400 and unsigned.json()["type"] == ERR + "badCSR"
    assert "signature" in unsigned.json()["detail"]
    # The order is still ready, and the right CSR completes it.
    done = await in_thread(acme_c.finalize_order, order, deadline)
    assert done.fullchain_pem


async def test_bad_and_replayed_nonces_are_badNonce(acme: AcmeSetup) -> None:
    acme_c = await in_thread(acme_client, acme)
    url = acme_c.net.account["uri"]
    response = await post(acme_c, url, None, nonce=b"0123456789abcdef0123456789abcdef")
    assert response.status_code == 400 and response.json()["type"] == ERR + "badNonce"
    assert response.headers["Replay-Nonce"]  # so the client can retry at once
    nonce = jose.b64.b64decode(await in_thread(fresh_nonce, acme_c))
    first = await post(acme_c, url, None, nonce=nonce)
    assert first.status_code == 200
    replay = await post(acme_c, url, None, nonce=nonce)
    assert replay.status_code == 400 and replay.json()["type"] == ERR + "badNonce"
    missing = await post(acme_c, url, None, nonce=None)
    assert missing.json()["type"] == ERR + "badNonce"


async def test_nonces_minted_before_a_restart_are_badNonce_and_a_retry_succeeds(acme: AcmeSetup) -> None:
    # On a SQLite file the spent nonces are kept without a disk sync, so a store opened
    # after a crash refuses every nonce minted before it: none whose use was lost can be
    # replayed. Here the running store gets the floor a restart a second from now gives.
    spent = acme.live.services.store.spent
    assert isinstance(spent, SharedSpentTokens) and spent.floor is not None
    acme_c = await in_thread(acme_client, acme)
    url = acme_c.net.account["uri"]
    before = jose.b64.b64decode(await in_thread(fresh_nonce, acme_c))
    opened = spent.floor
    spent.floor = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    try:
        await asyncio.sleep(1.1)
        refused = await post(acme_c, url, None, nonce=before)
        assert refused.status_code == 400 and refused.json()["type"] == ERR + "badNonce"
        assert "restarted" in refused.json()["detail"]
        retry = jose.b64.b64decode(refused.headers["Replay-Nonce"])
        assert (await post(acme_c, url, None, nonce=retry)).status_code == 200
    finally:
        spent.floor = opened


async def test_jws_rules(acme: AcmeSetup) -> None:
    acme_c = await in_thread(acme_client, acme)
    url = acme_c.net.account["uri"]
    # RS384 is a real JWS algorithm, but not one ACME servers must accept.
    rsa_key = jose.JWKRSA(key=rsa.generate_private_key(65537, 2048))
    response = await post(acme_c, acme_c.directory["newAccount"], {}, key=rsa_key, alg=jose.RS384, kid=False)
    problem = response.json()
    assert problem["type"] == ERR + "badSignatureAlgorithm" and "ES256" in problem["algorithms"]
    # The url header must be the URL posted to.
    response = await post(acme_c, url, None, jws_url=url + "x")
    assert response.json()["type"] == ERR + "unauthorized"
    # Content type.
    response = await post(acme_c, url, None, content_type="application/json")
    assert response.status_code == 415 and response.json()["type"] == ERR + "malformed"
    # Resources other than the directory, nonces and renewal info are POST-as-GET only.
    get = await in_thread(lambda: acme_c.net.session.get(url, verify=acme_c.net.verify_ssl))
    assert get.status_code == 405 and get.headers["Content-Type"] == "application/problem+json"
    # A kid-signed newAccount and a jwk-signed order request are both malformed.
    response = await post(acme_c, acme_c.directory["newOrder"], {"identifiers": []}, kid=False)
    assert response.json()["type"] == ERR + "malformed"


async def test_eddsa_ps256_and_es384_account_keys(acme: AcmeSetup) -> None:
    for key, alg in (
        (jose.JWKRSA(key=rsa.generate_private_key(65537, 2048)), jose.PS256),
        (jose.JWKEC(key=ec.generate_private_key(ec.SECP384R1())), jose.ES384),
    ):
        net = client.ClientNetwork(key, alg=alg, verify_ssl=str(acme.root_pem))
        directory = await in_thread(client.ClientV2.get_directory, acme.directory, net)
        acme_c = client.ClientV2(directory, net)
        regr = await in_thread(
            acme_c.new_account, messages.NewRegistration.from_data(terms_of_service_agreed=True)
        )
        assert regr.body.status == "valid"
    # josepy has no EdDSA, so the Ed25519 request is made by hand (RFC 8037).
    acme_c = await in_thread(acme_client, acme)
    url = acme_c.directory["newAccount"]
    body = await in_thread(eddsa_jws, acme_c, url, {"termsOfServiceAgreed": True})
    response = await in_thread(raw_post, acme_c, url, body)
    assert response.status_code == 201 and response.json()["key"]["kty"] == "OKP"


def eddsa_jws(acme_c: client.ClientV2, url: str, payload: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    b64 = lambda data: jose.b64.b64encode(data).decode()  # noqa: E731
    header = {
        "alg": "EdDSA",
        "jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)},
        "nonce": fresh_nonce(acme_c),
        "url": url,
    }
    protected, body = b64(json.dumps(header).encode()), b64(json.dumps(payload).encode())
    signature = key.sign(f"{protected}.{body}".encode())
    return json.dumps({"protected": protected, "payload": body, "signature": b64(signature)})


async def test_wrong_account_cannot_touch_another_accounts_objects(acme: AcmeSetup) -> None:
    owner = await in_thread(acme_client, acme)
    intruder = await in_thread(acme_client, acme)
    _, csr = cert_key_and_csr(["mine.example.test"])
    order = await in_thread(owner.new_order, csr)
    for url in (order.uri, order.authorizations[0].uri):
        response = await post(intruder, url, None)
        assert response.status_code == 404, url
    assert (await post(intruder, order.body.finalize, {"csr": "AAAA"})).status_code == 404
    # Another account's kid with one's own key: the signature does not verify.
    response = await post(intruder, order.uri, None, kid=owner.net.account["uri"])
    assert response.status_code == 400 and response.json()["type"] == ERR + "malformed"
    # An unknown kid.
    response = await post(intruder, order.uri, None, kid=owner.net.account["uri"] + "nope")
    assert response.json()["type"] == ERR + "accountDoesNotExist"


async def test_revocation_by_certificate_key(acme: AcmeSetup, responder: Http01Responder) -> None:
    acme_c = await in_thread(acme_client, acme)
    cert_key, csr = cert_key_and_csr(["revoke.example.test"])
    order = await in_thread(issue, acme_c, csr, http01(responder))
    leaf = leaf_of(order)
    # Anyone else's account may not revoke it.
    stranger = await in_thread(acme_client, acme)
    with pytest.raises(messages.Error) as refused:
        await in_thread(stranger.revoke, leaf, 1)
    assert refused.value.typ == ERR + "unauthorized"
    # The certificate's own key may, without any account (a jwk-signed request).
    jwk = jose.JWKEC(key=cert_key)
    net = client.ClientNetwork(jwk, alg=jose.ES256, verify_ssl=str(acme.root_pem))
    by_key = client.ClientV2(acme_c.directory, net)
    await in_thread(by_key.revoke, leaf, 1)
    record = await acme.live.services.store.certificates.get(format(leaf.serial_number, "x"))
    assert record is not None and record.status is CertStatus.REVOKED
    assert record.revocation_reason is RevocationReason.KEY_COMPROMISE
    with pytest.raises(messages.Error) as again:
        await in_thread(acme_c.revoke, leaf, 0)
    assert again.value.typ == ERR + "alreadyRevoked"


async def test_revocation_reason_must_be_one_acme_allows(acme: AcmeSetup, responder: Http01Responder) -> None:
    acme_c = await in_thread(acme_client, acme)
    _, csr = cert_key_and_csr(["reason.example.test"])
    leaf = leaf_of(await in_thread(issue, acme_c, csr, http01(responder)))
    with pytest.raises(messages.Error) as refused:
        await in_thread(acme_c.revoke, leaf, 6)  # certificateHold is not revocation
    assert refused.value.typ == ERR + "badRevocationReason"


async def test_external_account_binding(acme_eab: AcmeSetup) -> None:
    acme = acme_eab
    key = account_key()
    net = client.ClientNetwork(key, alg=jose.ES256, verify_ssl=str(acme.root_pem))
    directory = await in_thread(client.ClientV2.get_directory, acme.directory, net)
    assert directory.meta.external_account_required
    acme_c = client.ClientV2(directory, net)
    with pytest.raises(messages.Error) as refused:
        await in_thread(acme_c.new_account, messages.NewRegistration.from_data(terms_of_service_agreed=True))
    assert refused.value.typ == ERR + "externalAccountRequired"
    kid, hmac_key = await acme.live.services.credentials.create_eab("test", {"ca": acme.live.issuing})
    wrong = messages.ExternalAccountBinding.from_data(
        key.public_key(), kid, jose.b64.b64encode(b"x" * 32).decode(), directory
    )
    with pytest.raises(messages.Error) as bad_mac:
        await in_thread(
            acme_c.new_account, messages.NewRegistration.from_data(external_account_binding=wrong)
        )
    assert bad_mac.value.typ == ERR + "unauthorized"
    good = messages.ExternalAccountBinding.from_data(key.public_key(), kid, hmac_key, directory)
    regr = await in_thread(
        acme_c.new_account, messages.NewRegistration.from_data(external_account_binding=good)
    )
    assert regr.body.status == "valid"
    # A revoked EAB credential binds no more accounts.
    [record] = [c for c in await acme.live.services.credentials.list("eab") if c.name == "test"]
    await acme.live.services.credentials.revoke(record.id)
    other = account_key()
    net2 = client.ClientNetwork(other, alg=jose.ES256, verify_ssl=str(acme.root_pem))
    eab2 = messages.ExternalAccountBinding.from_data(other.public_key(), kid, hmac_key, directory)
    with pytest.raises(messages.Error) as revoked:
        await in_thread(
            client.ClientV2(directory, net2).new_account,
            messages.NewRegistration.from_data(external_account_binding=eab2),
        )
    assert revoked.value.typ == ERR + "unauthorized"


async def test_authorization_reuse_within_window(acme: AcmeSetup, responder: Http01Responder) -> None:
    acme_c = await in_thread(acme_client, acme)
    _, csr = cert_key_and_csr(["reuse.example.test"])
    first = await in_thread(issue, acme_c, csr, http01(responder))
    second = await in_thread(acme_c.new_order, csr)
    assert second.body.status == messages.STATUS_READY
    assert second.body.authorizations == first.body.authorizations
    # Another account never gets this account's authorization.
    other = await in_thread(acme_client, acme)
    third = await in_thread(other.new_order, csr)
    assert third.body.status == messages.STATUS_PENDING
    assert third.body.authorizations != first.body.authorizations
    # With reuse off, the same account validates again.
    await acme.live.bindings.put(
        "acme",
        acme.live.issuing,
        settings={
            "authz_reuse_seconds": 0,
            "http01_port": acme.http01_port,
            "dns_resolver": f"127.0.0.1:{acme.dns.dns_port}",
        },
    )
    fourth = await in_thread(acme_c.new_order, csr)
    assert fourth.body.status == messages.STATUS_PENDING


async def test_rejected_identifiers_come_with_subproblems(acme: AcmeSetup) -> None:
    await acme.live.bindings.put(
        "acme",
        acme.live.issuing,
        settings={"allowed_domain_suffixes": ["example.test"], "allowed_ip_ranges": ["10.0.0.0/8"]},
    )
    acme_c = await in_thread(acme_client, acme)
    url = acme_c.directory["newOrder"]
    identifiers = [
        {"type": "dns", "value": "ok.example.test"},
        {"type": "dns", "value": "evil.example.com"},
        {"type": "ip", "value": "192.0.2.7"},
    ]
    response = await post(acme_c, url, {"identifiers": identifiers})
    problem = response.json()
    assert response.status_code == 400 and problem["type"] == ERR + "rejectedIdentifier"
    assert {s["identifier"]["value"] for s in problem["subproblems"]} == {"evil.example.com", "192.0.2.7"}
    assert all(s["type"] == ERR + "rejectedIdentifier" for s in problem["subproblems"])
    bad_type = [{"type": "email", "value": "a@example.test"}, {"type": "dns", "value": "bad..name"}]
    response = await post(acme_c, url, {"identifiers": bad_type})
    problem = response.json()
    assert problem["type"] == ERR + "compound" and len(problem["subproblems"]) == 2


async def test_renewal_info_and_replaces(acme: AcmeSetup, responder: Http01Responder) -> None:
    acme_c = await in_thread(acme_client, acme)
    _, csr = cert_key_and_csr(["ari.example.test"])
    order = await in_thread(issue, acme_c, csr, http01(responder))
    leaf = leaf_of(order)
    when, _ = await in_thread(acme_c.renewal_time, order.fullchain_pem.encode())
    assert when is not None
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert leaf.not_valid_before_utc + lifetime / 2 < when < leaf.not_valid_after_utc
    # Renew with `replaces` (RFC 9773 5): the new certificate records what it renews.
    from acme.client import _renewal_info_path_component

    cert_id = _renewal_info_path_component(leaf)
    url = acme_c.directory["newOrder"]
    payload = {"identifiers": [{"type": "dns", "value": "ari.example.test"}], "replaces": cert_id}
    response = await in_thread(acme_c.net.post, url, RawPayload(payload))
    new = messages.OrderResource(
        body=messages.Order.from_json(response.json()), uri=response.headers["Location"], csr_pem=csr
    )
    done = await in_thread(acme_c.finalize_order, new, dt.datetime.now() + dt.timedelta(seconds=20))
    renewed = leaf_of(done)
    record = await acme.live.services.store.certificates.get(format(renewed.serial_number, "x"))
    assert record is not None and record.renewal_of == format(leaf.serial_number, "x")
    # A certificate is replaced once.
    twice = await post(acme_c, url, payload)
    assert twice.status_code == 409 and twice.json()["type"] == ERR + "alreadyReplaced"
    # After revocation the window is in the past: renew now.
    await in_thread(acme_c.revoke, leaf, 4)
    when, _ = await in_thread(acme_c.renewal_time, order.fullchain_pem.encode())
    assert when is not None and when <= dt.datetime.now(dt.UTC)


async def test_orders_list_and_alternate_chain(acme: AcmeSetup, responder: Http01Responder) -> None:
    acme_c = await in_thread(acme_client, acme)
    _, csr = cert_key_and_csr(["list.example.test"])
    order = await in_thread(issue, acme_c, csr, http01(responder))
    account = await in_thread(acme_c._post_as_get, acme_c.net.account["uri"])
    listed = await in_thread(acme_c._post_as_get, account.json()["orders"])
    assert order.uri in listed.json()["orders"]
    cert_url = order.body.certificate
    response = await in_thread(
        acme_c._post_as_get,
        cert_url,
    )
    assert response.headers["Content-Type"] == "application/pem-certificate-chain"
    alternates = acme_c._get_links(response, "alternate")
    assert len(alternates) == 1
    alt = await in_thread(acme_c._post_as_get, alternates[0])
    assert alt.text.count("BEGIN CERTIFICATE") == response.text.count("BEGIN CERTIFICATE") + 1


async def test_expired_order_is_invalid_and_cannot_be_finalized(clocked_gateway: Any) -> None:
    setup, clock = clocked_gateway
    acme_c = await in_thread(acme_client, setup)
    _, csr = cert_key_and_csr(["late.example.test"])
    order = await in_thread(acme_c.new_order, csr)
    assert order.body.status == messages.STATUS_PENDING
    clock.advance(dt.timedelta(days=8))  # past the 7-day order lifetime
    response = await in_thread(acme_c._post_as_get, order.uri)
    assert response.json()["status"] == "invalid"
    authz = await in_thread(acme_c._post_as_get, order.authorizations[0].uri)
    assert authz.json()["status"] == "expired"
    refused = await post(acme_c, order.body.finalize, {"csr": jose.b64.b64encode(b"x").decode()})
    assert refused.status_code == 403 and refused.json()["type"] == ERR + "orderNotReady"


async def test_slow_validation_answers_processing_with_retry_after(
    live_gateway: Any, challtestsrv: Any, tmp_path: Path
) -> None:
    from tests.interop.acme.conftest import make_acme_setup

    setup = await make_acme_setup(live_gateway, challtestsrv, inline_validation_seconds=0)
    responder = await Http01Responder(setup.http01_port).start()
    try:
        acme_c = await in_thread(acme_client, setup)
        _, csr = cert_key_and_csr(["slow.example.test"])
        order = await in_thread(acme_c.new_order, csr)
        [(challb, answer)] = http01_answers(acme_c, order, responder)
        response = await in_thread(acme_c.net.post, challb.uri, answer)
        assert response.json()["status"] == "processing"
        assert response.headers["Retry-After"] == "1"
        assert acme_c._get_links(response, "up") == [order.authorizations[0].uri]
        done = await in_thread(acme_c.poll_and_finalize, order, dt.datetime.now() + dt.timedelta(seconds=30))
        assert done.fullchain_pem
    finally:
        await responder.stop()


async def test_account_update_and_terms_of_service(acme: AcmeSetup) -> None:
    acme_c = await in_thread(acme_client, acme)
    updated = await in_thread(
        acme_c.update_registration,
        acme_c.net.account.update(body=acme_c.net.account.body.update(contact=("mailto:new@example.com",))),
    )
    assert updated.body.contact == ("mailto:new@example.com",)
    with pytest.raises(messages.Error) as bad_contact:
        await in_thread(
            acme_c.update_registration,
            acme_c.net.account.update(body=acme_c.net.account.body.update(contact=("tel:+1555",))),
        )
    assert bad_contact.value.typ == ERR + "unsupportedContact"
    # With terms of service in the directory, a new account must agree to them.
    await acme.live.bindings.put(
        "acme", acme.live.issuing, settings={"terms_of_service": "https://pki.example/tos"}
    )
    key = account_key()
    net = client.ClientNetwork(key, alg=jose.ES256, verify_ssl=str(acme.root_pem))
    directory = await in_thread(client.ClientV2.get_directory, acme.directory, net)
    assert directory.meta.terms_of_service == "https://pki.example/tos"
    fresh = client.ClientV2(directory, net)
    with pytest.raises(messages.Error) as refused:
        await in_thread(fresh.new_account, messages.NewRegistration.from_data(email="a@example.com"))
    assert "terms of service" in str(refused.value.detail)
    agreed = await in_thread(
        fresh.new_account, messages.NewRegistration.from_data(terms_of_service_agreed=True)
    )
    assert agreed.body.status == "valid"


async def test_an_interrupted_finalize_is_completed_with_its_stored_certificate(
    acme: AcmeSetup, responder: Http01Responder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The worker stores the certificate, then stops before saving the order as valid.
    The client polling the order gets it valid with that certificate (found by the CA
    core's request key), never a second certificate and never a lost one."""
    from protocols.acme.model import OrderStatus
    from protocols.acme.repository import AcmeRepository

    acme_c = await in_thread(acme_client, acme)
    _, csr = cert_key_and_csr(["interrupted.example.test"])
    order = await in_thread(acme_c.new_order, csr)
    for challb, response in http01_answers(acme_c, order, responder):
        await in_thread(acme_c.answer_challenge, challb, response)
    order = await in_thread(acme_c.poll_authorizations, order, dt.datetime.now() + dt.timedelta(seconds=20))

    save_order = AcmeRepository.save_order

    async def stops_before_valid(self: AcmeRepository, order: Any, now: dt.datetime) -> Any:
        if order.status is OrderStatus.VALID:
            raise RuntimeError("worker stopped")
        return await save_order(self, order, now)

    monkeypatch.setattr(AcmeRepository, "save_order", stops_before_valid)
    der = x509.load_pem_x509_csr(csr).public_bytes(serialization.Encoding.DER)
    stopped = await post(acme_c, order.body.finalize, {"csr": jose.b64.b64encode(der).decode()})
    assert stopped.status_code == 500
    monkeypatch.setattr(AcmeRepository, "save_order", save_order)
    page = await acme.live.services.store.certificates.search(
        CertificateQuery(text="interrupted.example.test")
    )
    assert page.total == 1, "stored before the worker stopped"

    polled = (await in_thread(acme_c._post_as_get, order.uri)).json()
    assert polled["status"] == "valid", polled
    done = await in_thread(acme_c.poll_and_finalize, order, dt.datetime.now() + dt.timedelta(seconds=20))
    ders = chain_ders(done.fullchain_pem)
    assert format(x509.load_der_x509_certificate(ders[0]).serial_number, "x") == page.items[0].serial
    openssl_verify(tmp_path, root_der(acme), ders[1:], ders[:1])
    page = await acme.live.services.store.certificates.search(
        CertificateQuery(text="interrupted.example.test")
    )
    assert page.total == 1, "never a second certificate"


async def test_caa_records_are_checked_when_the_binding_names_its_identities(
    live_gateway: Any, challtestsrv: Any, tmp_path: Path
) -> None:
    """RFC 8659 through the real client: CAA at a parent domain naming this CA lets the
    order through; CAA naming another CA makes finalize fail with a caa problem."""
    from tests.interop.acme.conftest import make_acme_setup

    setup = await make_acme_setup(live_gateway, challtestsrv, caa_identities=["ceg.test"])
    challtestsrv.add_caa("caa-ours.test", ("issue", "ceg.test; account=any"))
    challtestsrv.add_caa("caa-theirs.test", ("issue", "other-ca.example"))
    responder = await Http01Responder(setup.http01_port).start()
    try:
        acme_c = await in_thread(acme_client, setup)
        assert acme_c.directory.meta.caa_identities == ("ceg.test",)
        _, csr = cert_key_and_csr(["www.caa-ours.test"])
        done = await in_thread(issue, acme_c, csr, http01(responder))
        openssl_verify(
            tmp_path, root_der(setup), chain_ders(done.fullchain_pem)[1:], chain_ders(done.fullchain_pem)[:1]
        )

        _, csr = cert_key_and_csr(["www.caa-theirs.test", "www.caa-ours.test"])
        with pytest.raises(messages.Error) as refused:
            await in_thread(issue, acme_c, csr, http01(responder))
        assert refused.value.typ == ERR + "caa"
        assert [s.identifier.value for s in refused.value.subproblems] == ["www.caa-theirs.test"]
        assert "other-ca.example" in refused.value.subproblems[0].detail
        page = await setup.live.services.store.certificates.search(CertificateQuery(text="caa-theirs.test"))
        assert page.total == 0
    finally:
        await responder.stop()
