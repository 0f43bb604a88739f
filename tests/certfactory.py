"""Real certificates for tests: EC and RSA CAs, intermediates, CSRs, signed leaves."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP384R1())


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cckit tests"),
         x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


@dataclass
class CA:
    key: object
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, builder: x509.CertificateBuilder, hash_alg=None) -> x509.Certificate:
        if hash_alg is None:
            hash_alg = hashes.SHA384() if isinstance(self.key, ec.EllipticCurvePrivateKey) \
                else hashes.SHA256()
        return builder.sign(self.key, hash_alg)


def make_root(cn: str = "Test EC Root CA", *, key=None, not_before=None, not_after=None,
              ca: bool = True) -> CA:
    key = key or ec_key()
    nb = not_before or NOW - dt.timedelta(days=365)
    na = not_after or NOW + dt.timedelta(days=3650)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(nb)
        .not_valid_after(na)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False),
            critical=True,
        )
    hash_alg = hashes.SHA384() if isinstance(key, ec.EllipticCurvePrivateKey) else hashes.SHA256()
    return CA(key, b.sign(key, hash_alg))


def make_intermediate(parent: CA, cn: str = "Test EC Issuing CA", *, key=None) -> CA:
    key = key or ec_key()
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(parent.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=300))
        .not_valid_after(NOW + dt.timedelta(days=1800))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()),
            critical=False,
        )
    )
    return CA(key, parent.sign(b))


def make_csr(cn: str = "uccx1-EC.cc.example.com", sans: list[str] | None = None, key=None):
    key = key or ec_key()
    sans = ["uccx1.cc.example.com", "cc.example.com"] if sans is None else sans
    b = x509.CertificateSigningRequestBuilder().subject_name(_name(cn))
    if sans:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    hash_alg = hashes.SHA384() if isinstance(key, ec.EllipticCurvePrivateKey) else hashes.SHA256()
    return key, b.sign(key, hash_alg)


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
    pub = public_key or csr.public_key()
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=730))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if sans_ext is not None:
        b = b.add_extension(sans_ext, critical=False)
    return ca.sign(b, hash_alg)


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
