"""The CA adapter interface."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from cryptography import x509

from ..errors import InputError, WaitingForCA

__all__ = ["CertificateAuthority", "SignedCertificate", "SigningKey", "check_csr_signature",
           "sign_all"]


@dataclass(frozen=True)
class SignedCertificate:
    """A node's signed certificate and the CA certificates that go with it."""

    node: str
    certificate: x509.Certificate
    #: intermediates first, the root last (what goes into tomcat-trust)
    chain: tuple[x509.Certificate, ...]
    #: where it came from, for the audit record (a file path, "lab CA ...")
    source: str


@dataclass(frozen=True)
class SigningKey:
    """What a CA signs with: the key of its issuing certificate, and how that was learnt.

    Before any CSR is sent this tells whether an ECDSA certificate will come back signed with
    EC (presented to clients) or with RSA (not presented, CSCvb58580)."""

    key_type: str  # "EC" or "RSA" (another name for anything else)
    #: the curve ("secp384r1") or the RSA size in bits ("2048")
    detail: str
    #: the issuing certificate's subject (RFC 4514)
    issuer_subject: str
    #: its SHA-256 fingerprint, as cckit shows fingerprints
    sha256: str
    #: how it was learnt ("the issuing certificate in the inbox cert-inbox/sub.pem", ...)
    learnt_from: str

    @property
    def signs_ec(self) -> bool:
        return self.key_type == "EC"

    @classmethod
    def of(cls, issuing: x509.Certificate, learnt_from: str) -> SigningKey:
        """The signing key of the CA whose certificate is ``issuing``."""
        from .. import certs

        info = certs.describe(issuing)
        return cls(info.key_type, info.key_detail, issuing.subject.rfc4514_string(),
                   certs.fingerprint_sha256(issuing), learnt_from)

    def __str__(self) -> str:
        return (f"{self.key_type} {self.detail} issuing key of {self.issuer_subject} "
                f"(sha256 {self.sha256[:23]}...), from {self.learnt_from}")


class CertificateAuthority(abc.ABC):
    """Takes each node's CSR and, now or later, gives back its signed certificate."""

    #: the name used in site parameters and on the command line
    name: ClassVar[str]

    @abc.abstractmethod
    def submit(self, node: str, csr: x509.CertificateSigningRequest) -> None:
        """Hand ``node``'s CSR to the CA. Submitting the same CSR again is harmless."""

    @abc.abstractmethod
    def collect(self, node: str, csr: x509.CertificateSigningRequest) -> SignedCertificate | None:
        """The certificate signed for this CSR's key, or None while the CA has not returned it."""

    def describe(self) -> str:
        """One line for the runbook: which CA, where."""
        return self.name

    def waiting_hint(self) -> str:
        """What the engineer should do while certificates are outstanding."""
        return "rerun once the CA has returned the signed certificates"

    def signing_key(self) -> SigningKey | None:
        """The key this CA signs with, probed before any CSR is sent; None: cannot tell."""
        return None


def check_csr_signature(node: str, csr: x509.CertificateSigningRequest) -> None:
    """Refuse a CSR whose signature does not verify before any CA sees it."""
    if not csr.is_signature_valid:
        raise InputError("the CSR's signature does not verify (damaged CSR?)", node=node,
                         hint="download the CSR from the node again")


def sign_all(
    ca: CertificateAuthority, csrs: Mapping[str, x509.CertificateSigningRequest]
) -> dict[str, SignedCertificate]:
    """Submit every CSR and collect every certificate; :class:`WaitingForCA` if any is missing.

    Idempotent: a rerun re-submits (harmlessly) and collects what has come back since.
    """
    signed: dict[str, SignedCertificate] = {}
    for node, csr in csrs.items():
        got = ca.collect(node, csr)
        if got is None:
            ca.submit(node, csr)
            got = ca.collect(node, csr)
        if got is not None:
            signed[node] = got
    missing = [n for n in csrs if n not in signed]
    if missing:
        raise WaitingForCA(
            f"waiting for the CA ({ca.describe()}): no signed certificate yet for "
            f"{', '.join(missing)}",
            hint=ca.waiting_hint(),
        )
    return signed
