"""Real certificates for tests: EC and RSA CAs, intermediates, CSRs, signed leaves."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cckit._internal import x509build

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP384R1())


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _name(cn: str) -> x509.Name:
    return x509build.name(cn, organization="cckit tests")


@dataclass
class CA:
    key: object
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, builder: x509.CertificateBuilder, hash_alg=None) -> x509.Certificate:
        return builder.sign(self.key, hash_alg or x509build.default_hash(self.key))


def make_root(cn: str = "Test EC Root CA", *, key=None, not_before=None, not_after=None,
              ca: bool = True) -> CA:
    key = key or ec_key()
    return CA(key, x509build.ca_certificate(
        _name(cn), key, ca=ca, not_before=not_before or NOW - dt.timedelta(days=365),
        not_after=not_after or NOW + dt.timedelta(days=3650)))


def make_intermediate(parent: CA, cn: str = "Test EC Issuing CA", *, key=None) -> CA:
    key = key or ec_key()
    return CA(key, x509build.ca_certificate(
        _name(cn), key, parent=(parent.key, parent.cert), path_length=0,
        not_before=NOW - dt.timedelta(days=300), not_after=NOW + dt.timedelta(days=1800)))


def make_csr(cn: str = "uccx1-EC.cc.example.com", sans: list[str] | None = None, key=None):
    key = key or ec_key()
    sans = ["uccx1.cc.example.com", "cc.example.com"] if sans is None else sans
    b = x509.CertificateSigningRequestBuilder().subject_name(_name(cn))
    if sans:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    return key, b.sign(key, x509build.default_hash(key))


def sign_csr(ca: CA, csr: x509.CertificateSigningRequest, *, not_before=None, not_after=None,
             cn: str | None = None, sans: list[str] | None = None, public_key=None,
             hash_alg=None) -> x509.Certificate:
    """Sign like a CA would: copy subject and SANs from the CSR unless told otherwise."""
    subject = _name(cn) if cn else csr.subject
    if sans is None:
        try:
            san_ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            sans_ext = san_ext.value
        except x509.ExtensionNotFound:
            sans_ext = None
    else:
        sans_ext = x509.SubjectAlternativeName([x509.DNSName(s) for s in sans])
    return x509build.leaf_certificate(
        subject, public_key or csr.public_key(), issuer=(ca.key, ca.cert.subject),
        sans=sans_ext, not_before=not_before or NOW - dt.timedelta(days=1),
        not_after=not_after or NOW + dt.timedelta(days=730), hash_alg=hash_alg)


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
