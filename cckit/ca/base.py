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

__all__ = ["CertificateAuthority", "SignedCertificate", "get_adapter", "sign_all"]


@dataclass(frozen=True)
class SignedCertificate:
    """A node's signed certificate and the CA certificates that go with it."""

    node: str
    certificate: x509.Certificate
    #: intermediates first, the root last (what goes into tomcat-trust)
    chain: tuple[x509.Certificate, ...]
    #: where it came from, for the audit record (a file path, "lab CA ...")
    source: str


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
    from .certsrv import ADCSCA
    from .files import FilesCA
    from .lab import LabCA

    return {LabCA.name: LabCA, FilesCA.name: FilesCA, ADCSCA.name: ADCSCA}


def get_adapter(name: str, **options: Any) -> CertificateAuthority:
    """An adapter by name: built-in, or registered under the ``cckit.ca`` entry-point group."""
    adapters: dict[str, Any] = dict(_builtin())
    for ep in entry_points(group="cckit.ca"):
        adapters.setdefault(ep.name, ep)
    if name not in adapters:
        raise InputError(
            f"unknown CA adapter {name!r}", hint=f"use one of {', '.join(sorted(adapters))}"
        )
    cls = adapters[name]
    if not isinstance(cls, type):
        cls = cls.load()
    check_options(name, cls, options)
    return cls(**options)


def check_options(name: str, cls: type, options: dict[str, Any]) -> None:
    """Unknown or missing options of adapter ``cls``: one line naming the known ones (the
    adapter's ``__init__`` keywords are its typed options)."""
    params = {k: p for k, p in inspect.signature(cls).parameters.items()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(options) - set(params))
    missing = sorted(k for k, p in params.items() if p.default is p.empty and k not in options)
    if unknown or missing:
        what = "; ".join(p for p in (
            f"unknown option(s) {', '.join(unknown)}" if unknown else "",
            f"missing option(s) {', '.join(missing)}" if missing else "") if p)
        raise InputError(f"CA adapter {name!r}: {what}",
                         hint=f"its options are {', '.join(params) or 'none'}")
