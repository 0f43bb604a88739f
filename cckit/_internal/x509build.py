"""The one certificate builder of the client side: CA certificates and signed leaves.

The lab CA, the fake transport and the tests' certificate factory all build through here.
(The VOS mock keeps its own builder in ``vosmock/pki.py``: it imports nothing from cckit.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ca_certificate", "default_hash", "leaf_certificate", "name"]

SERVER_AND_CLIENT = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)


def name(cn: str, *, organization: str | None = None, unit: str | None = None) -> x509.Name:
    attrs = []
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if unit:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def default_hash(key: Any) -> hashes.HashAlgorithm:
    """SHA-384 for an EC key, SHA-256 otherwise (what VOS and most CAs pick)."""
    return hashes.SHA384() if isinstance(key, ec.EllipticCurvePrivateKey) else hashes.SHA256()


def _key_usage(*, ca: bool, ec_key: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=not ca and not ec_key,
        data_encipherment=False, key_agreement=not ca and ec_key, key_cert_sign=ca,
        crl_sign=ca, encipher_only=False, decipher_only=False)


def ca_certificate(subject: x509.Name, key: Any, *, not_before: dt.datetime,
                   not_after: dt.datetime, parent: tuple[Any, x509.Certificate] | None = None,
                   path_length: int | None = None, ca: bool = True,
                   hash_alg: hashes.HashAlgorithm | None = None) -> x509.Certificate:
    """A root (``parent`` None: self-signed) or an intermediate signed by ``parent``.
    ``ca=False`` builds the same certificate without CA rights (to test refusals)."""
    pub = key.public_key()
    b = (x509.CertificateBuilder()
         .subject_name(subject)
         .issuer_name(parent[1].subject if parent else subject)
         .public_key(pub)
         .serial_number(x509.random_serial_number())
         .not_valid_before(not_before)
         .not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None),
                        critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False))
    if ca:
        b = b.add_extension(_key_usage(ca=True), critical=True)
    signer = key
    if parent:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(parent[0].public_key()),
            critical=False)
        signer = parent[0]
    return b.sign(signer, hash_alg or default_hash(signer))


def leaf_certificate(subject: x509.Name, public_key: Any, *, issuer: tuple[Any, x509.Name],
                     not_before: dt.datetime, not_after: dt.datetime,
                     sans: x509.SubjectAlternativeName | None = None,
                     eku: Sequence[x509.ObjectIdentifier] | None = SERVER_AND_CLIENT,
                     key_usage: bool = False,
                     hash_alg: hashes.HashAlgorithm | None = None) -> x509.Certificate:
    """An end-entity certificate for ``public_key`` signed by ``issuer`` = (key, name).
    A self-signed leaf passes its own key and ``subject`` as the issuer."""
    ikey, iname = issuer
    b = (x509.CertificateBuilder()
         .subject_name(subject)
         .issuer_name(iname)
         .public_key(public_key)
         .serial_number(x509.random_serial_number())
         .not_valid_before(not_before)
         .not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if key_usage:
        b = b.add_extension(
            _key_usage(ca=False, ec_key=isinstance(public_key, ec.EllipticCurvePublicKey)),
            critical=True)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if sans is not None:
        b = b.add_extension(sans, critical=False)
    if key_usage:
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                            critical=False)
    if ikey.public_key() != public_key:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ikey.public_key()),
            critical=False)
    return b.sign(ikey, hash_alg or default_hash(ikey))
