"""X.509 helpers for the VOS mock (self-contained: imports nothing from the rest of cckit)."""

from __future__ import annotations

import datetime as dt
import re
import secrets

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

UNITS = ("tomcat", "tomcat-ECDSA")
EC_CURVES = {256: ec.SECP256R1, 384: ec.SECP384R1, 521: ec.SECP521R1}
PEM_CERT_RE = re.compile(rb"-----BEGIN CERTIFICATE-----\s+.*?-----END CERTIFICATE-----", re.DOTALL)


def canonical_unit(text: str) -> str | None:
    for unit in UNITS:
        if text.lower() == unit.lower():
            return unit
    return None


def new_key(unit: str, size: int | None = None):
    if unit == "tomcat-ECDSA":
        return ec.generate_private_key(EC_CURVES[size or 384]())
    return rsa.generate_private_key(public_exponent=65537, key_size=size or 2048)


def key_size(key) -> int:
    return key.curve.key_size if isinstance(key, ec.EllipticCurvePrivateKey) else key.key_size


def hash_for(key) -> hashes.HashAlgorithm:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return hashes.SHA512() if key.curve.key_size > 384 else hashes.SHA384()
    return hashes.SHA256()


def key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_key(data: bytes):
    return serialization.load_pem_private_key(data, password=None)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_cert(data: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data)


def pub_der(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def subject_name(cn: str, ou: str | None, org: str) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs += [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Lab"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Lab"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    ]
    return x509.Name(attrs)


def self_signed(key, name: x509.Name, sans: list[str], days: int = 5 * 365) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=not isinstance(key, ec.EllipticCurvePrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            False,
        )
    )
    return builder.sign(key, hash_for(key))


def make_csr(key, name: x509.Name, sans: list[str]) -> x509.CertificateSigningRequest:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), False)
        .sign(key, hash_for(key))
    )


def csr_pem(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.PEM)


def cn_of(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else name.rfc4514_string()


def is_self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject and signed_by(cert, cert)


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when `cert`'s signature really verifies with `issuer`'s public key."""
    if cert.issuer != issuer.subject:
        return False
    pub = issuer.public_key()
    try:
        if isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(
                cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
            )
        elif isinstance(pub, rsa.RSAPublicKey):
            params = cert.signature_algorithm_parameters
            pad = params if isinstance(params, padding.PSS) else padding.PKCS1v15()
            pub.verify(
                cert.signature, cert.tbs_certificate_bytes, pad, cert.signature_hash_algorithm
            )
        else:
            cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def signed_with_rsa(cert: x509.Certificate) -> bool:
    """Whether the issuer signed ``cert`` with an RSA key (PKCS#1 v1.5 or PSS)."""
    return isinstance(cert.signature_algorithm_parameters, padding.PKCS1v15 | padding.PSS)


def key_type_name(public_key) -> str:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "EC"
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA"
    return type(public_key).__name__


def unit_key_type(unit: str) -> str:
    return "EC" if unit == "tomcat-ECDSA" else "RSA"


_SIGALG_NAMES = {
    "sha256WithRSAEncryption": "SHA256withRSA",
    "sha384WithRSAEncryption": "SHA384withRSA",
    "sha512WithRSAEncryption": "SHA512withRSA",
    "ecdsa-with-SHA256": "SHA256withECDSA",
    "ecdsa-with-SHA384": "SHA384withECDSA",
    "ecdsa-with-SHA512": "SHA512withECDSA",
}


def describe(cert: x509.Certificate) -> list[str]:
    """The `show cert own|trust FILE` details block [format assumed]."""
    pub = cert.public_key()
    oid = cert.signature_algorithm_oid
    sig = _SIGALG_NAMES.get(oid._name, oid._name)
    key_oid = "1.2.840.10045.2.1" if key_type_name(pub) == "EC" else "1.2.840.113549.1.1.1"
    fmt = "%a %b %d %H:%M:%S UTC %Y"
    return [
        "[",
        "  Version: V3",
        f"  Serial Number: {cert.serial_number:X}",
        f"  SignatureAlgorithm: {sig} ({oid.dotted_string})",
        f"  Issuer Name: {cert.issuer.rfc4514_string()}",
        f"  Validity From: {cert.not_valid_before_utc.strftime(fmt)}",
        f"           To:   {cert.not_valid_after_utc.strftime(fmt)}",
        f"  Subject Name: {cert.subject.rfc4514_string()}",
        f"  Key: {key_type_name(pub)} ({key_oid})",
        f"    Key size: {pub.key_size if hasattr(pub, 'key_size') else pub.curve.key_size}",
        f"    Key value: {pub_der(pub).hex()}",
        "]",
    ]


def split_pem_certs(data: bytes) -> list[bytes]:
    return [m.group(0) + b"\n" for m in PEM_CERT_RE.finditer(data)]


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_component(text: str, limit: int = 64) -> str:
    """A file-name component that can never leave its directory (no '/', no leading dots)."""
    out = _SAFE.sub("_", text).lstrip(".-")[:limit].rstrip(".")
    return out or "cert"


def trust_filename(cert: x509.Certificate) -> str:
    return f"{safe_component(cn_of(cert.subject))}_{cert.serial_number:x}.pem"
