"""X.509 core: load what CAs send back, describe it, and gate a signed certificate.

Everything here is built on ``cryptography``; chain verification uses
``cryptography.x509.verification`` rather than a hand-written walk.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import hashlib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

from .errors import CertificateLoadError, GateError
from .scenarios import RSA_ONLY
from .topology import ECDSA_UNIT, RSA_UNIT

__all__ = [
    "ECDSA_UNIT",
    "RSA_UNIT",
    "CertInfo",
    "GateCode",
    "GateReason",
    "GateResult",
    "check_signed_certificate",
    "check_trust_certificate",
    "describe",
    "describe_csr",
    "fingerprint_sha256",
    "gate_signed_certificate",
    "is_ca",
    "load_certificates",
    "load_csr",
    "public_key_sha256",
    "rsa_signed_hint",
    "split_leaf_and_chain",
    "verify_chain",
]

#: Curves VOS accepts for tomcat-ECDSA (key sizes 256, 384, 521).
VOS_EC_CURVES = {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521}

#: BEGIN and END lines, found in one linear pass (a file of BEGIN lines without END lines
#: made a lazy BEGIN...END pattern rescan the rest of the file for every one)
_PEM_MARKER = re.compile(r"-----(?P<kind>BEGIN|END) (?P<label>[A-Z0-9 ]{1,64})-----")
#: far more than any certificate file or trust bundle (Mozilla's whole root store is ~250 kB)
MAX_INPUT_BYTES = 4 << 20
MAX_PEM_BLOCKS = 1000
_CERT_LABELS = {"CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"}
_CSR_LABELS = {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"}
_PKCS7_LABELS = {"PKCS7", "CMS"}

_RSA_SIGS = {
    SignatureAlgorithmOID.RSA_WITH_MD5,
    SignatureAlgorithmOID.RSA_WITH_SHA1,
    SignatureAlgorithmOID.RSA_WITH_SHA224,
    SignatureAlgorithmOID.RSA_WITH_SHA256,
    SignatureAlgorithmOID.RSA_WITH_SHA384,
    SignatureAlgorithmOID.RSA_WITH_SHA512,
    SignatureAlgorithmOID.RSASSA_PSS,
}
_EC_SIGS = {
    SignatureAlgorithmOID.ECDSA_WITH_SHA1,
    SignatureAlgorithmOID.ECDSA_WITH_SHA224,
    SignatureAlgorithmOID.ECDSA_WITH_SHA256,
    SignatureAlgorithmOID.ECDSA_WITH_SHA384,
    SignatureAlgorithmOID.ECDSA_WITH_SHA512,
}


# --------------------------------------------------------------------------- loading


def _read(data: bytes | str | Path, source: str | None) -> tuple[bytes, str]:
    if isinstance(data, Path):
        try:
            with data.open("rb") as f:
                raw, source = f.read(MAX_INPUT_BYTES + 1), source or str(data)
        except OSError as e:
            raise CertificateLoadError(
                f"cannot read the file: {e.strerror}", file=str(data),
                hint="check the path and that you may read it",
            ) from None
    elif isinstance(data, str):
        raw, source = data.encode("utf-8", "replace"), source or "<text>"
    else:
        raw, source = bytes(data), source or "<bytes>"
    if len(raw) > MAX_INPUT_BYTES:
        raise CertificateLoadError(
            f"the input is larger than {MAX_INPUT_BYTES >> 20} MiB: not a certificate file",
            file=source, hint="give the certificate file the CA returned")
    return raw, source


def _pem_blocks(raw: bytes, source: str) -> list[tuple[str, bytes]]:
    """(label, DER) for each PEM block; text around the blocks is ignored.

    One pass over the BEGIN/END lines; at most :data:`MAX_PEM_BLOCKS` blocks.
    """
    text = raw.decode("ascii", "replace").replace("\r\n", "\n").replace("\r", "\n")
    blocks: list[tuple[str, bytes]] = []
    label, start = None, 0  # the block open now: its label and where its body starts
    for m in _PEM_MARKER.finditer(text):
        kind, found = m.group("kind"), m.group("label")
        if kind == "BEGIN":
            if label is not None:  # a BEGIN inside an open block: that block was cut off
                break
            if "PRIVATE KEY" in found:
                raise CertificateLoadError(
                    f"the file contains a private key ({found.title()}) where a certificate "
                    "was expected; its contents are not shown",
                    file=source,
                    hint="give the certificate file the CA returned, never a private key; "
                    "if the key left its server, treat it as compromised",
                )
            if len(blocks) >= MAX_PEM_BLOCKS:
                raise CertificateLoadError(
                    f"more than {MAX_PEM_BLOCKS} PEM blocks: not a certificate file",
                    file=source, hint="give the certificate file the CA returned")
            label, start = found, m.end()
            continue
        if label is None or found != label:
            continue  # an END without its BEGIN: text around the blocks
        body = "".join(line.strip() for line in text[start:m.start()].split("\n")
                       if ":" not in line)  # drop RFC 1421 headers such as Proc-Type
        try:
            der = base64.b64decode(body, validate=True)
        except ValueError:
            raise CertificateLoadError(
                f"PEM block {label!r} #{len(blocks) + 1} is not valid base64 "
                "(damaged in copy/paste?)",
                file=source,
                hint="download the file again from the CA",
            ) from None
        blocks.append((label, der))
        label = None
    if label is not None:  # a BEGIN after the last complete block: a truncated file
        raise CertificateLoadError(
            f"PEM block {label!r} is truncated: BEGIN without a matching END line",
            file=source,
            hint="the file was cut off; download or copy it again in full",
        )
    return blocks


def _parse_der_cert(der: bytes, source: str, index: int) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise CertificateLoadError(
            f"certificate #{index} is not a valid X.509 certificate",
            file=source, hint="download the file again from the CA",
        ) from None


def load_certificates(
    data: bytes | str | Path, *, source: str | None = None
) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, a DER file or a PKCS#7 (.p7b) bundle.

    CRLF line endings and text around PEM blocks (as some CAs send) are accepted.
    A private key, a CSR, a truncated block or garbage is a :class:`CertificateLoadError`
    that names the file and never echoes key material.
    """
    raw, source = _read(data, source)
    if not raw.strip():
        raise CertificateLoadError("the file is empty", file=source,
                                   hint="give the certificate file the CA returned")
    if b"-----BEGIN" in raw:
        certs: list[x509.Certificate] = []
        for label, der in _pem_blocks(raw, source):
            if label in _CERT_LABELS:
                certs.append(_parse_der_cert(der, source, len(certs) + 1))
            elif label in _PKCS7_LABELS:
                try:
                    certs.extend(pkcs7.load_der_pkcs7_certificates(der))
                except ValueError:
                    raise CertificateLoadError(
                        "the PKCS#7 block holds no readable certificate", file=source
                    ) from None
            elif label in _CSR_LABELS:
                raise CertificateLoadError(
                    "the file holds a certificate signing request (CSR), not a certificate",
                    file=source,
                    hint="send the CSR to the CA and give the certificate it returns",
                )
            else:
                raise CertificateLoadError(
                    f"unexpected PEM block {label!r} where a certificate was expected",
                    file=source,
                )
        if not certs:
            raise CertificateLoadError("no certificate found in the file", file=source)
        return certs
    # Binary: a DER certificate or a DER PKCS#7 bundle.
    try:
        return [x509.load_der_x509_certificate(raw)]
    except ValueError:
        pass
    try:
        return list(pkcs7.load_der_pkcs7_certificates(raw))
    except ValueError:
        pass
    if _looks_like_der_private_key(raw):
        raise CertificateLoadError(
            "the file contains a private key where a certificate was expected; "
            "its contents are not shown",
            file=source, hint="give the certificate file, never a private key",
        )
    raise CertificateLoadError(
        "the file is neither PEM, DER nor PKCS#7: not a certificate",
        file=source,
        hint="give the certificate as the CA returned it (.pem, .cer, .crt, .der or .p7b)",
    )


def _looks_like_der_private_key(raw: bytes) -> bool:
    try:
        serialization.load_der_private_key(raw, password=None)
        return True
    except TypeError:  # an encrypted key
        return True
    except (ValueError, UnsupportedAlgorithm):
        return False


def load_csr(data: bytes | str | Path, *, source: str | None = None
             ) -> x509.CertificateSigningRequest:
    """The one CSR in a PEM or DER file."""
    raw, source = _read(data, source)
    if b"-----BEGIN" in raw:
        csrs = [der for label, der in _pem_blocks(raw, source) if label in _CSR_LABELS]
        if len(csrs) != 1:
            raise CertificateLoadError(
                f"expected exactly one CERTIFICATE REQUEST block, found {len(csrs)}",
                file=source, hint="give the CSR downloaded from the node",
            )
        raw = csrs[0]
    try:
        return x509.load_der_x509_csr(raw)
    except ValueError:
        raise CertificateLoadError(
            "not a valid certificate signing request", file=source,
            hint="download the CSR from the node again",
        ) from None


# --------------------------------------------------------------------------- describing


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as colon-separated upper-case hex (as VOS and browsers show it)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def _sans(obj: x509.Certificate | x509.CertificateSigningRequest) -> tuple[str, ...]:
    try:
        ext = obj.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    out = [f"DNS:{n}" for n in ext.value.get_values_for_type(x509.DNSName)]
    out += [f"IP:{ip}" for ip in ext.value.get_values_for_type(x509.IPAddress)]
    return tuple(out)


def _key_type(key: object) -> tuple[str, str, int]:
    """(type, detail, bits) of a public key."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.name, key.curve.key_size
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", str(key.key_size), key.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", str(key.key_size), key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", "", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", "", 448
    return type(key).__name__, "", 0


def _signature_key_type(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    if oid in _EC_SIGS:
        return "EC"
    if oid in _RSA_SIGS:
        return "RSA"
    return oid._name  # type: ignore[attr-defined]


def is_ca(cert: x509.Certificate) -> bool:
    """basicConstraints CA:TRUE."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class CertInfo:
    """What an engineer (and an auditor) needs to know about one certificate."""

    subject_cn: str
    sans: tuple[str, ...]
    issuer: str
    issuer_cn: str
    serial_hex: str
    key_type: str
    key_detail: str
    key_bits: int
    signature_algorithm: str
    signed_with: str
    not_before: dt.datetime
    not_after: dt.datetime
    days_left: int
    sha256: str
    self_signed: bool
    is_ca: bool

    def as_row(self) -> dict[str, object]:
        row = asdict(self)
        row["sans"] = ", ".join(self.sans)
        return row


def describe(cert: x509.Certificate, *, now: dt.datetime | None = None) -> CertInfo:
    """A typed record of one certificate."""
    ktype, kdetail, kbits = _key_type(cert.public_key())
    not_after = cert.not_valid_after_utc
    return CertInfo(
        subject_cn=_cn(cert.subject),
        sans=_sans(cert),
        issuer=cert.issuer.rfc4514_string(),
        issuer_cn=_cn(cert.issuer),
        serial_hex=format(cert.serial_number, "x"),
        key_type=ktype,
        key_detail=kdetail,
        key_bits=kbits,
        signature_algorithm=cert.signature_algorithm_oid._name,  # type: ignore[attr-defined]
        signed_with=_signature_key_type(cert),
        not_before=cert.not_valid_before_utc,
        not_after=not_after,
        days_left=(not_after - _now(now)).days,
        sha256=fingerprint_sha256(cert),
        self_signed=_is_self_signed(cert),
        is_ca=is_ca(cert),
    )


# --------------------------------------------------------------------------- the gate


class GateCode(enum.StrEnum):
    """Why the gate refused a certificate; code decides on these, people read the text."""

    KEY_TYPE = "key type"
    CURVE = "curve"
    RSA_SIGNED = "RSA-signed"
    KEY_MISMATCH = "key differs from the CSR"
    CN_MISMATCH = "CN differs"
    SAN_MISMATCH = "SANs differ"
    NOT_YET_VALID = "not yet valid"
    EXPIRED = "expired"
    NOT_CA = "trust certificate is not a CA"
    NO_ROOT = "chain incomplete"
    CHAIN = "chain does not verify"
    EKU = "EKU missing"
    NOT_NEWER = "not newer than installed"


class GateReason(str):
    """One reason, as the sentence an engineer reads, carrying its :class:`GateCode`."""

    code: GateCode

    def __new__(cls, code: GateCode, message: str) -> GateReason:
        self = super().__new__(cls, message)
        self.code = code
        return self

    def __reduce__(self) -> tuple:  # pickles (Dask) as code + text
        return (GateReason, (self.code, str(self)))


@dataclass(frozen=True)
class GateResult:
    """Outcome of :func:`check_signed_certificate`; ``ok`` when ``reasons`` is empty."""

    unit: str
    leaf: CertInfo
    reasons: tuple[GateReason, ...]
    chain_checked: bool
    chain: tuple[CertInfo, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.reasons

    @property
    def codes(self) -> frozenset[GateCode]:
        return frozenset(r.code for r in self.reasons)

    def summary(self) -> str:
        if not self.ok:
            return f"REFUSED {self.unit} {self.leaf.subject_cn}: " + "; ".join(self.reasons)
        chain = (
            f"chain verified to {self.chain[-1].subject_cn!r}" if self.chain_checked and self.chain
            else "chain not checked (no chain given)"
        )
        return (
            f"OK {self.unit} {self.leaf.subject_cn} ({self.leaf.key_type} {self.leaf.key_detail},"
            f" signed with {self.leaf.signature_algorithm} by {self.leaf.issuer_cn!r}, "
            f"{self.leaf.days_left} days left, {chain}) sha256 {self.leaf.sha256}"
        )


def check_trust_certificate(cert: x509.Certificate) -> list[GateReason]:
    """Reasons a certificate must not go into tomcat-trust (empty when fine)."""
    info = describe(cert)
    if not info.is_ca:
        return [GateReason(
            GateCode.NOT_CA, f"trust certificate {info.subject_cn!r} is not a CA certificate "
            "(basicConstraints CA:TRUE missing): tomcat-trust takes only the root and "
            "intermediate CA certificates"
        )]
    return []


def split_leaf_and_chain(
    certs: Sequence[x509.Certificate],
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The end-entity certificate of a bundle CAs send back, and the CA certificates with it."""
    leaves = [c for c in certs if not is_ca(c)]
    if not certs:
        raise CertificateLoadError("no certificate given")
    leaf = leaves[0] if leaves else certs[0]
    return leaf, [c for c in certs if c is not leaf]


def _public_bytes(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_sha256(obj: x509.Certificate | x509.CertificateSigningRequest | Any) -> str:
    """SHA-256 of the SubjectPublicKeyInfo: the same for a CSR, the cert signed for it and
    the private key (anything with ``public_key()``); cckit's one key id."""
    return hashlib.sha256(_public_bytes(obj.public_key())).hexdigest()


def describe_csr(csr: x509.CertificateSigningRequest) -> dict[str, str]:
    """CN, SANs, key and public-key hash of a CSR, for tables and instructions."""
    ktype, kdetail, _ = _key_type(csr.public_key())
    return {"cn": _cn(csr.subject), "sans": ", ".join(_sans(csr)),
            "key": f"{ktype} {kdetail}".strip(), "public_key_sha256": public_key_sha256(csr)}


_EKU_OIDS = {"serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
             "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH}


def check_signed_certificate(
    cert: x509.Certificate,
    csr: x509.CertificateSigningRequest,
    chain: Sequence[x509.Certificate] | None,
    *,
    unit: str = ECDSA_UNIT,
    now: dt.datetime | None = None,
    require_eku: Sequence[str] = (),
    installed: x509.Certificate | None = None,
) -> GateResult:
    """Every reason the signed ``cert`` must not be uploaded to ``unit`` (none: it may).

    ``chain`` holds the root and any intermediates; ``None`` skips the chain check
    (an empty list is an incomplete chain). ``require_eku``: the extended key usages the
    product needs (``serverAuth``, ``clientAuth``: FN74382); a certificate without the EKU
    extension may be used for any purpose. ``installed``: the certificate the node has now;
    the new one must not have been issued before it (notBefore).
    """
    if unit not in (ECDSA_UNIT, RSA_UNIT):
        raise ValueError(f"unit must be {ECDSA_UNIT!r} or {RSA_UNIT!r}, not {unit!r}")
    unknown = [e for e in require_eku if e not in _EKU_OIDS]
    if unknown:
        raise ValueError(f"require_eku takes {' and '.join(_EKU_OIDS)}, not {unknown}")
    now = _now(now)
    info = describe(cert, now=now)
    reasons: list[GateReason] = []

    def refuse(code: GateCode, message: str) -> None:
        reasons.append(GateReason(code, message))

    # 1. The key must fit the slot.
    want = "EC" if unit == ECDSA_UNIT else "RSA"
    if info.key_type != want:
        refuse(GateCode.KEY_TYPE,
            f"the certificate has an {info.key_type} key but {unit} takes only {want} keys"
            + (" (an RSA certificate cannot go in the ECDSA slot)" if unit == ECDSA_UNIT else "")
        )
    elif unit == ECDSA_UNIT and info.key_detail not in VOS_EC_CURVES:
        refuse(GateCode.CURVE,
            f"EC curve {info.key_detail} is not one VOS accepts (P-256, P-384, P-521)"
        )

    # 2. An ECDSA certificate signed by an RSA CA is not presented to clients.
    if unit == ECDSA_UNIT and info.signed_with == "RSA":
        refuse(GateCode.RSA_SIGNED,
            f"the CA signed it with RSA ({info.signature_algorithm}): an ECDSA certificate "
            "signed with RSA is not presented to clients, and on SocialMiner it breaks chat "
            "and email (CSCvb58580). Get it signed by a CA that signs with an EC key, or use "
            "the RSA-only scenario (install the ECDSA-disabling COP)"
        )

    # 3. Signed for this CSR's key?
    if _public_bytes(cert.public_key()) != _public_bytes(csr.public_key()):
        refuse(GateCode.KEY_MISMATCH,
            "its public key differs from the pending CSR's: it was signed for another "
            "(older?) CSR. Send the current CSR to the CA"
        )

    # 4. Same names as the CSR (VOS: "CSR SAN and Certificate SAN does not match").
    csr_cn, cert_cn = _cn(csr.subject), info.subject_cn
    if csr_cn != cert_cn:
        refuse(GateCode.CN_MISMATCH, f"subject CN {cert_cn!r} differs from the CSR's {csr_cn!r}")
    csr_sans, cert_sans = set(_sans(csr)), set(info.sans)
    # Many CAs add the CN as a DNS SAN; that adds no name the CSR did not ask for.
    cert_sans.discard(f"DNS:{csr_cn}")
    csr_sans.discard(f"DNS:{csr_cn}")
    if csr_sans != cert_sans:
        missing = sorted(csr_sans - cert_sans)
        extra = sorted(cert_sans - csr_sans)
        detail = "; ".join(
            p for p in (
                f"missing {', '.join(missing)}" if missing else "",
                f"not in CSR {', '.join(extra)}" if extra else "",
            ) if p
        )
        refuse(GateCode.SAN_MISMATCH, f"CSR SAN and Certificate SAN does not match ({detail})")

    # 5. Validity window.
    if now < info.not_before:
        refuse(GateCode.NOT_YET_VALID,
               f"not yet valid: valid from {info.not_before:%Y-%m-%d %H:%M} UTC")
    if now > info.not_after:
        refuse(GateCode.EXPIRED, f"expired on {info.not_after:%Y-%m-%d %H:%M} UTC")

    # 5b. The EKUs the product needs (FN74382: clientAuth for node-to-node mutual TLS).
    if require_eku:
        try:
            have = {o.dotted_string for o in
                    cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value}
        except x509.ExtensionNotFound:
            have = None  # no EKU extension: any purpose
        if have is not None:
            missing = [e for e in require_eku if _EKU_OIDS[e].dotted_string not in have]
            if missing:
                refuse(GateCode.EKU,
                       f"its extended key usage lacks {', '.join(missing)} (the node needs "
                       f"{', '.join(require_eku)}; FN74382): ask the CA for a template with "
                       "server and client authentication")

    # 5c. Newer than what the node has: issued no earlier than the installed certificate.
    if installed is not None and cert.not_valid_before_utc < installed.not_valid_before_utc:
        refuse(GateCode.NOT_NEWER,
               f"older than the installed certificate: issued {info.not_before:%Y-%m-%d}, "
               f"the installed one {installed.not_valid_before_utc:%Y-%m-%d} (an old "
               "certificate sent again?)")

    # 6./7. Chain: every trust certificate a CA, and the leaf verifying up to a given root.
    chain_infos: tuple[CertInfo, ...] = ()
    if chain is not None:
        for c in chain:
            reasons.extend(check_trust_certificate(c))
        roots = [c for c in chain if _is_self_signed(c)]
        intermediates = [c for c in chain if not _is_self_signed(c)]
        if not roots:
            refuse(GateCode.NO_ROOT,
                "chain incomplete: no root CA certificate given (add the self-signed root "
                "of the issuing CA)"
            )
        else:
            try:
                verified = verify_chain(cert, roots, intermediates, now)
                chain_infos = tuple(describe(c, now=now) for c in verified[1:])
            except verification.VerificationError as e:
                refuse(GateCode.CHAIN,
                    f"chain does not verify up to the given root(s) "
                    f"{', '.join(repr(_cn(r.subject)) for r in roots)}: {e} "
                    "(an intermediate missing, or a different CA?)"
                )
    return GateResult(unit=unit, leaf=info, reasons=tuple(reasons),
                      chain_checked=chain is not None, chain=chain_infos)


def verify_chain(
    leaf: x509.Certificate,
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    now: dt.datetime | None = None,
) -> list[x509.Certificate]:
    """The verified path from ``leaf`` to one of ``roots`` (leaf first); raises
    ``cryptography.x509.verification.VerificationError``. The one chain policy of cckit:
    the gate and the TLS probe both use it. The leaf's host name is not checked."""
    # The leaf's extensions are VOS's business (it has no EKU rule); CA certificates must
    # follow the web PKI profile, which is what browsers will apply.
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(list(roots)))
        .time(_now(now))
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    return list(verifier.verify(leaf, list(intermediates)).chain)


def rsa_signed_hint(ca_key: object | None = None) -> str:
    """What to do about an RSA-signed ECDSA certificate; ``ca_key`` is the CA's probed
    signing key (``cckit.ca.SigningKey``), named when known."""
    probed = f" (it signs with the {ca_key})" if ca_key is not None else " (it signs with RSA)"
    return (f"this CA cannot do it{probed}: use {RSA_ONLY.name}, or a CA with an EC issuing "
            "key")


def gate_signed_certificate(
    cert: x509.Certificate,
    csr: x509.CertificateSigningRequest,
    chain: Sequence[x509.Certificate] | None,
    *,
    unit: str = ECDSA_UNIT,
    node: str | None = None,
    file: str | None = None,
    now: dt.datetime | None = None,
    ca_key: object | None = None,
) -> GateResult:
    """Like :func:`check_signed_certificate`, but raise :class:`GateError` on any reason
    (``ca_key``: the CA's probed signing key, named in the hint of an RSA-signed one)."""
    result = check_signed_certificate(cert, csr, chain, unit=unit, now=now)
    if not result.ok:
        rsa_signed = GateCode.RSA_SIGNED in result.codes
        raise GateError(
            list(result.reasons), node=node, file=file, unit=unit,
            hint=(
                f"nothing was uploaded. {rsa_signed_hint(ca_key)}" if rsa_signed else
                "nothing was uploaded; get a corrected certificate from the CA and run again"
            ),
        )
    return result
