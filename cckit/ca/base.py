"""The CA adapter interface."""

from __future__ import annotations

import abc
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar

from cryptography import x509

from ..errors import InputError, WaitingForCA

__all__ = ["CertificateAuthority", "SignedCertificate", "SigningKey", "check_options",
           "get_adapter", "sign_all"]


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
    #: the option naming the folder the adapter keeps its state in (a CA, an account, open
    #: orders), if any: the renewal autopilot gives it one lasting home per site
    state_option: ClassVar[str | None] = None
    #: options that name files or folders (in a site file, relative to the site file)
    path_options: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def unattended(cls, options: Mapping[str, Any]) -> str | None:
        """Why this adapter, with ``options``, needs a person to sign (None: it signs on its
        own). The renewal autopilot uses only adapters that sign on their own."""
        return f"the {cls.name} CA adapter does not say that it signs without a person"

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


def _builtin() -> dict[str, type[CertificateAuthority]]:
    from .acme import AcmeCA
    from .certsrv import ADCSCA
    from .files import FilesCA
    from .lab import LabCA

    return {LabCA.name: LabCA, FilesCA.name: FilesCA, ADCSCA.name: ADCSCA, AcmeCA.name: AcmeCA}


def _adapter_class(name: str) -> type[CertificateAuthority]:
    adapters: dict[str, Any] = dict(_builtin())
    for ep in entry_points(group="cckit.ca"):
        adapters.setdefault(ep.name, ep)
    if name not in adapters:
        raise InputError(
            f"unknown CA adapter {name!r}", hint=f"use one of {', '.join(sorted(adapters))}"
        )
    cls = adapters[name]
    return cls if isinstance(cls, type) else cls.load()


def check_options(name: str, options: Mapping[str, Any], *, complete: bool = True
                  ) -> type[CertificateAuthority]:
    """The adapter class for ``name`` after checking ``options`` against its signature
    (``complete=False``: only that every option is known). Values are never shown."""
    cls = _adapter_class(name)
    sig = inspect.signature(cls)
    try:
        (sig.bind if complete else sig.bind_partial)(**options)
    except TypeError:
        known = [p for p, v in sig.parameters.items()
                 if v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)]
        unknown = sorted(set(map(str, options)) - set(known))
        missing = [p for p in known if p not in options
                   and sig.parameters[p].default is inspect.Parameter.empty]
        what = (f"unknown option {', '.join(unknown)}" if unknown
                else f"missing option {', '.join(missing)}")
        raise InputError(f"the {name} CA adapter: {what} (its options: "
                         f"{', '.join(known)})", hint="fix ca_options") from None
    return cls


def get_adapter(name: str, **options: Any) -> CertificateAuthority:
    """An adapter by name: built-in, or registered under the ``cckit.ca`` entry-point group."""
    return check_options(name, options)(**options)
