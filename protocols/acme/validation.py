"""Challenge validation against the real network (RFC 8555 section 8; RFC 8737; RFC 8738).

- http-01 (8.3): GET http://{identifier}:{http01_port}/.well-known/acme-challenge/{token}
  with the identifier as Host; status 200 and the key authorization as body (trailing
  whitespace ignored). Redirects are not followed: a private CA should not be steered
  into fetching other internal URLs.
- dns-01 (8.4): TXT _acme-challenge.{name} holds base64url(SHA-256(key authorization)).
- tls-alpn-01 (RFC 8737): TLS to {identifier}:{tls_alpn01_port}, SNI the name (or the
  reverse-DNS name of an IP, RFC 8738 6), ALPN acme-tls/1; the self-signed certificate
  names exactly the identifier and carries the critical acmeIdentifier extension with
  SHA-256(key authorization).
Names resolve through the binding's `dns_resolver` (host:port) when set (lookup.py's
stub, dnspython when an answer needs more), else through the system; IPv4 first, IPv6
when a name has no IPv4 address. Each attempt has a timeout; attempts are retried a bounded number of times;
the result is None (valid) or the problem document recorded on the challenge.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.resolver
from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from protocols.acme import http01, lookup
from protocols.acme.core import dns01_txt, tls_alpn01_digest
from protocols.acme.model import Identifier
from protocols.acme.problems import AcmeProblem, ProblemType
from protocols.acme.settings import AcmeSettings

ACME_IDENTIFIER_OID = ObjectIdentifier("1.3.6.1.5.5.7.1.31")
ACME_TLS_ALPN = "acme-tls/1"
MAX_HTTP01_BODY = 4096


@dataclass(frozen=True, slots=True)
class ValidationTarget:
    identifier: Identifier  # the authorization's (base) identifier
    challenge_type: str
    token: str
    key_authorization: str


def _problem(kind: ProblemType, detail: str) -> AcmeProblem:
    return AcmeProblem(kind, detail, 400)


class ChallengeValidator:
    """Runs validations; holds the TLS context it reuses."""

    def __init__(self) -> None:
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        # The validation certificate is self-signed by design (RFC 8737 3): what is
        # checked is its acmeIdentifier extension, not a chain.
        self._tls.check_hostname = False
        self._tls.verify_mode = ssl.CERT_NONE
        self._tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self._tls.set_alpn_protocols([ACME_TLS_ALPN])

    async def close(self) -> None:
        """Nothing to release: every validation opens and closes its own connections."""

    async def validate(self, target: ValidationTarget, settings: AcmeSettings) -> dict[str, Any] | None:
        """None when the challenge is met; else the last attempt's problem document."""
        last: AcmeProblem | None = None
        for attempt in range(settings.validation_attempts):
            if attempt:
                await asyncio.sleep(settings.validation_retry_seconds)
            try:
                async with asyncio.timeout(settings.validation_timeout_seconds):
                    await self._attempt(target, settings)
                return None
            except AcmeProblem as problem:
                last = problem
            except TimeoutError:
                last = _problem(
                    ProblemType.CONNECTION,
                    f"{target.challenge_type} for {target.identifier.value} timed out "
                    f"after {settings.validation_timeout_seconds:g}s",
                )
        assert last is not None
        return last.to_json()

    async def _attempt(self, target: ValidationTarget, settings: AcmeSettings) -> None:
        if target.challenge_type == "http-01":
            await self._http01(target, settings)
        elif target.challenge_type == "dns-01":
            await self._dns01(target, settings)
        elif target.challenge_type == "tls-alpn-01":
            await self._tls_alpn01(target, settings)
        else:  # never offered, so never stored
            raise _problem(ProblemType.MALFORMED, f"unknown challenge type {target.challenge_type}")

    # --- resolution ---------------------------------------------------------------------------

    @staticmethod
    def resolver(settings: AcmeSettings) -> dns.asyncresolver.Resolver:
        """dnspython's resolver for the binding: its `dns_resolver`, else the system's."""
        if not settings.dns_resolver:
            return dns.asyncresolver.Resolver()
        host, _, port = settings.dns_resolver.rpartition(":")
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [host.strip("[]")]
        resolver.port = int(port)
        resolver.lifetime = settings.validation_timeout_seconds
        return resolver

    async def addresses(self, ident: Identifier, settings: AcmeSettings) -> list[str]:
        """IPv4 first; IPv6 when the name has no IPv4 address."""
        if ident.type == "ip":
            return [ident.value]
        if not settings.dns_resolver:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    ident.value, None, type=socket.SOCK_STREAM
                )
            except OSError as exc:
                raise _problem(ProblemType.DNS, f"cannot resolve {ident.value}: {exc}") from None
            found = list(dict.fromkeys(str(info[4][0]) for info in infos))
            return sorted(found, key=lambda a: ":" in a)
        for rdtype in (lookup.A, lookup.AAAA):
            answer = await self._ask(settings, ident.value, rdtype)
            if answer is None:
                return await self._addresses_dnspython(ident, settings)
            if answer.rcode not in (lookup.NOERROR, lookup.NXDOMAIN):
                raise _problem(ProblemType.DNS, f"DNS lookup of {ident.value} failed (rcode {answer.rcode})")
            found = [a for a in (lookup.address_text(r) for r in answer.records) if a]
            if found:
                return found
        raise _problem(ProblemType.DNS, f"no A or AAAA record for {ident.value}")

    @staticmethod
    async def _ask(settings: AcmeSettings, name: str, rdtype: int) -> lookup.Answer | None:
        host, _, port = settings.dns_resolver.rpartition(":")
        try:
            return await lookup.query((host.strip("[]"), int(port)), name, rdtype)
        except (OSError, ValueError):
            return None

    async def _addresses_dnspython(self, ident: Identifier, settings: AcmeSettings) -> list[str]:
        resolver = self.resolver(settings)
        for rdtype in ("A", "AAAA"):
            try:
                answer = await resolver.resolve(ident.value, rdtype)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
                raise _problem(ProblemType.DNS, f"DNS lookup of {ident.value} failed: {exc}") from None
            return [r.to_text() for r in answer]
        raise _problem(ProblemType.DNS, f"no A or AAAA record for {ident.value}")

    # --- http-01 ------------------------------------------------------------------------------

    async def _http01(self, target: ValidationTarget, settings: AcmeSettings) -> None:
        port = settings.http01_port
        name = target.identifier.value
        host_header = f"[{name}]" if ":" in name else name
        if port != 80:
            host_header += f":{port}"
        path = f"/.well-known/acme-challenge/{target.token}"
        errors = []
        for address in await self.addresses(target.identifier, settings):
            try:
                status, body = await http01.fetch(address, port, host_header, path, MAX_HTTP01_BODY)
            except (OSError, http01.HttpError) as exc:
                errors.append(f"{address}: {exc.__class__.__name__}: {exc}")
                continue
            if status != 200:
                raise _problem(
                    ProblemType.UNAUTHORIZED,
                    f"http-01: {name} ({address}) answered {status} for the challenge URL",
                )
            if body.decode("utf-8", "replace").rstrip() != target.key_authorization:
                raise _problem(
                    ProblemType.INCORRECT_RESPONSE,
                    f"http-01: {name} ({address}) served something other than the key authorization",
                )
            return
        raise _problem(ProblemType.CONNECTION, f"http-01: cannot connect to {name}: {'; '.join(errors)}")

    # --- dns-01 -------------------------------------------------------------------------------

    async def _dns01(self, target: ValidationTarget, settings: AcmeSettings) -> None:
        name = f"_acme-challenge.{target.identifier.value}"
        answer = await self._ask(settings, name, lookup.TXT) if settings.dns_resolver else None
        if answer is not None:
            if answer.rcode not in (lookup.NOERROR, lookup.NXDOMAIN):
                raise _problem(ProblemType.DNS, f"dns-01: TXT lookup of {name} failed (rcode {answer.rcode})")
            values = [lookup.txt_strings(r) for r in answer.records]
        else:
            values = await self._txt_dnspython(name, settings)
        if not values:
            raise _problem(ProblemType.DNS, f"dns-01: no TXT record at {name}")
        if dns01_txt(target.key_authorization) not in values:
            raise _problem(
                ProblemType.INCORRECT_RESPONSE,
                f"dns-01: none of the {len(values)} TXT records at {name} matches",
            )

    async def _txt_dnspython(self, name: str, settings: AcmeSettings) -> list[str]:
        try:
            answer = await self.resolver(settings).resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            raise _problem(ProblemType.DNS, f"dns-01: TXT lookup of {name} failed: {exc}") from None
        return [b"".join(r.strings).decode("ascii", "replace") for r in answer]

    # --- tls-alpn-01 --------------------------------------------------------------------------

    async def _tls_alpn01(self, target: ValidationTarget, settings: AcmeSettings) -> None:
        ident = target.identifier
        sni = ipaddress.ip_address(ident.value).reverse_pointer if ident.type == "ip" else ident.value
        errors = []
        for address in await self.addresses(ident, settings):
            try:
                _, writer = await asyncio.open_connection(
                    address, settings.tls_alpn01_port, ssl=self._tls, server_hostname=sni
                )
            except ssl.SSLError as exc:
                raise _problem(
                    ProblemType.TLS, f"tls-alpn-01: handshake with {address} failed: {exc}"
                ) from None
            except OSError as exc:
                errors.append(f"{address}: {exc}")
                continue
            try:
                ssl_object = writer.get_extra_info("ssl_object")
                protocol = ssl_object.selected_alpn_protocol() if ssl_object else None
                der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
            finally:
                writer.close()
            if protocol != ACME_TLS_ALPN:
                raise _problem(ProblemType.TLS, f"tls-alpn-01: {address} did not negotiate {ACME_TLS_ALPN}")
            if der is None:
                raise _problem(ProblemType.TLS, f"tls-alpn-01: {address} sent no certificate")
            check_alpn_certificate(der, ident, tls_alpn01_digest(target.key_authorization))
            return
        raise _problem(
            ProblemType.CONNECTION, f"tls-alpn-01: cannot connect to {ident.value}: {'; '.join(errors)}"
        )


def check_alpn_certificate(der: bytes, ident: Identifier, digest: bytes) -> None:
    """RFC 8737 3: exactly one SAN, the identifier; a critical acmeIdentifier extension
    whose value is the DER OCTET STRING of SHA-256(key authorization)."""
    try:
        certificate = x509.load_der_x509_certificate(der)
        names = list(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
        extension = certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    except (ValueError, x509.ExtensionNotFound) as exc:
        raise _problem(ProblemType.UNAUTHORIZED, f"tls-alpn-01: unusable certificate: {exc}") from None
    wanted: x509.GeneralName = (
        x509.IPAddress(ipaddress.ip_address(ident.value)) if ident.type == "ip" else x509.DNSName(ident.value)
    )
    if len(names) != 1 or names[0] != wanted:
        raise _problem(
            ProblemType.UNAUTHORIZED, f"tls-alpn-01: the certificate must name exactly {ident.value}"
        )
    if not extension.critical:
        raise _problem(ProblemType.UNAUTHORIZED, "tls-alpn-01: the acmeIdentifier extension must be critical")
    value = extension.value.value if isinstance(extension.value, x509.UnrecognizedExtension) else b""
    if value != b"\x04\x20" + digest:
        raise _problem(ProblemType.INCORRECT_RESPONSE, "tls-alpn-01: acmeIdentifier does not match")
