"""An operator's own root CA made with plain openssl: `openssl req -x509` for the root, and
`openssl x509 -req` or `openssl ca` to sign the issuing CA's exported PKCS#10."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

CA_EXTENSIONS = """
[v3_sub]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[not_ca]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[no_ski]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = none
authorityKeyIdentifier = keyid:always

[no_cert_sign]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

# `openssl ca` needs a configuration of its own: a database, serials, and a policy.
CA_CONFIG = (
    """
[ca]
default_ca = operator

[operator]
dir = {dir}
database = $dir/index.txt
serial = $dir/serial
new_certs_dir = $dir/issued
certificate = $dir/root.pem
private_key = $dir/root.key
default_md = sha256
default_days = 1825
policy = anything
copy_extensions = none
unique_subject = no
x509_extensions = v3_sub

[anything]
commonName = supplied
organizationName = optional
countryName = optional
"""
    + CA_EXTENSIONS
)


@dataclass(frozen=True)
class OpensslRoot:
    dir: Path
    key: Path
    cert: Path

    @property
    def der(self) -> bytes:
        return x509.load_pem_x509_certificate(self.cert.read_bytes()).public_bytes(serialization.Encoding.DER)


def _run(args: list[str], cwd: Path) -> None:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


def openssl_root(tmp: Path, name: str = "root", subject: str = "/CN=Operator Root/O=Operator") -> OpensslRoot:
    """A self-signed P-256 root from `openssl req -x509` (v3_ca: cA, SKI, AKI)."""
    d = tmp / f"openssl-{name}"
    (d / "issued").mkdir(parents=True)
    (d / "index.txt").write_text("")
    (d / "serial").write_text("1000\n")
    (d / "ca.cnf").write_text(CA_CONFIG.format(dir=d))
    _run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "root.key", "-out", "root.pem", "-subj", subject, "-days", "3650", "-sha256",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,digitalSignature,keyCertSign,cRLSign",
        ],
        d,
    )  # fmt: skip
    return OpensslRoot(d, d / "root.key", d / "root.pem")


def sign_csr(root: OpensslRoot, csr_der: bytes, how: str = "x509", extensions: str = "v3_sub") -> bytes:
    """The operator signs an exported CSR; returns the issuing CA certificate (DER)."""
    csr = root.dir / "request.csr"
    csr.write_bytes(x509.load_der_x509_csr(csr_der).public_bytes(serialization.Encoding.PEM))
    out = root.dir / "signed.pem"
    if how == "x509":
        (root.dir / "ext.cnf").write_text(CA_EXTENSIONS)
        _run(
            [
                "openssl", "x509", "-req", "-in", str(csr), "-CA", str(root.cert), "-CAkey", str(root.key),
                "-CAcreateserial", "-days", "1825", "-sha256", "-extfile", "ext.cnf", "-extensions", extensions,
                "-out", str(out),
            ],
            root.dir,
        )  # fmt: skip
    elif how == "ca":
        _run(
            [
                "openssl", "ca", "-batch", "-config", "ca.cnf", "-extensions", extensions, "-in", str(csr),
                "-out", str(out), "-notext",
            ],
            root.dir,
        )  # fmt: skip
    else:
        raise ValueError(how)
    return x509.load_pem_x509_certificate(out.read_bytes()).public_bytes(serialization.Encoding.DER)
