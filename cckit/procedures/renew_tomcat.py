"""Renew the RSA ``tomcat`` certificate: CSR on every node, sign, gate, trust, identity,
HA-safe restart, verify per port.

What UCCX 11.6+ (12.5, 15), SocialMiner and CCP sites need again and again: ECDSA is gone
from 11.6 on (Cisco 118855), so the one web identity is the RSA ``tomcat``. The steps are
those of :class:`~cckit.procedures.ca_signed.CaSigned` (same idempotent resume rules) with
the ``tomcat`` unit, an RSA-only TLS client, and a stricter gate: the EKUs the product needs
(serverAuth; clientAuth where FN74382 applies) and a certificate newer than the installed
one. Any :class:`~cckit.ca.CertificateAuthority` adapter works (``submit``/``collect``).
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from .. import certs, topology
from ..ca import CertificateAuthority, SignedCertificate
from ..inventory import Node
from ..session import SiteSession
from .ca_signed import CaSigned

__all__ = ["RenewTomcat", "required_eku"]

#: RSA key sizes a VOS CSR can ask for [assumed: the OS Admin "Key Length" choices]
RSA_KEY_SIZES = (2048, 3072, 4096)


def required_eku(node: Node, version: str) -> tuple[str, ...]:
    """The EKUs a renewed ``tomcat`` must carry on ``node`` at ``version``: serverAuth, and
    clientAuth where the node also presents it as a TLS client (FN74382, topology)."""
    notice = topology.client_auth_notice(node.role, version, topology.RSA_UNIT)
    return ("serverAuth", "clientAuth") if notice else ("serverAuth",)


class RenewTomcat(CaSigned):
    """The renew_tomcat procedure over one site session, one method per step.

    A node whose stored ``tomcat`` is already CA-signed (RSA, more than ``min_days`` left)
    and has no pending CSR is left alone unless ``renew`` (the usual case: renewing before
    expiry).
    """

    unit = topology.RSA_UNIT
    client = "rsa"
    scenario = "renew_tomcat"
    key_sizes = RSA_KEY_SIZES

    def __init__(self, session: SiteSession, ca: CertificateAuthority, *, renew: bool = True,
                 min_days: int = 30, key_size: int | None = None,
                 hash_algorithm: str | None = None) -> None:
        super().__init__(session, ca, renew=renew, min_days=min_days, key_size=key_size,
                         hash_algorithm=hash_algorithm)
        self._versions: dict[str, str] = {}

    def _is_done(self, cert: x509.Certificate | None) -> bool:
        if cert is None:
            return False
        info = certs.describe(cert)
        return not info.self_signed and info.key_type == "RSA" and info.days_left > self.min_days

    def _version(self, node: Node) -> str:
        if node.name not in self._versions:
            with self.session.on(node) as t:
                self._versions[node.name] = t.version().version
        return self._versions[node.name]

    def _check(self, name: str, sc: SignedCertificate,
               now: dt.datetime | None) -> certs.GateResult:
        """The tomcat gate: RSA key, CSR match, SANs, EKU, validity, chain, and newer than
        the installed certificate (unless it is that certificate: a rerun after the upload)."""
        node = self.session.site.node(name)
        installed = self._stored(node)
        if installed is not None and (certs.fingerprint_sha256(installed)
                                      == certs.fingerprint_sha256(sc.certificate)):
            installed = None
        return certs.check_signed_certificate(
            sc.certificate, self.csrs[name], list(sc.chain), unit=self.unit, now=now,
            require_eku=required_eku(node, self._version(node)), installed=installed)

