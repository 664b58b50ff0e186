"""pkilint (PyPI) run in-process: its RFC 5280 certificate validator, as `lint_pkix_cert` runs it.

Policy for the CA core's tests: FATAL, ERROR, WARNING and NOTICE findings fail a test;
INFO findings are facts, not problems (e.g. "subject key identifier method 1 identified",
which the profile tests expect). A warning we chose to accept would be listed here with
the reason; there is none.

Known pkilint limit: its URI check (`validators.url`) reports pkix.invalid_uri_syntax (ERROR)
for URNs such as `urn:uuid:...`, which RFC 5280 4.2.1.6 / RFC 3986 allow and ceg accepts in
a SAN. Lint certificates with authority-form URIs, or filter that one finding in the test
that issues a URN and say why there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from pkilint import loader  # type: ignore[import-untyped]
from pkilint.pkix import certificate, extension, name  # type: ignore[import-untyped]
from pkilint.validation import ValidationFindingSeverity  # type: ignore[import-untyped]

ACCEPTED: dict[str, str] = {}  # finding code -> why it is accepted


@dataclass(frozen=True, slots=True)
class Finding:
    severity: ValidationFindingSeverity
    code: str
    message: str | None
    path: str

    def __str__(self) -> str:
        return f"{self.severity} {self.code} at {self.path}: {self.message or ''}"


@cache
def _validator() -> Any:
    return certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )


def lint_certificate(der: bytes) -> list[Finding]:
    """Every pkilint finding on one DER certificate."""
    document = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "certificate")
    return [
        Finding(f.finding.severity, f.finding.code, f.message, r.node.path)
        for r in _validator().validate(document.root)
        for f in r.finding_descriptions
    ]


def problems(findings: list[Finding]) -> list[Finding]:
    """The findings that fail a test under the policy above."""
    return [f for f in findings if f.severity < ValidationFindingSeverity.INFO and f.code not in ACCEPTED]


def assert_lints_clean(der: bytes, label: str = "certificate") -> list[Finding]:
    findings = lint_certificate(der)
    bad = problems(findings)
    assert not bad, f"pkilint on {label}:\n" + "\n".join(str(f) for f in bad)
    return findings
