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

import dataclasses
import datetime as dt

from cryptography import x509

from .. import certs, topology
from ..audit import operation
from ..ca import CertificateAuthority, SignedCertificate
from ..certs import GateCode, GateReason
from ..errors import InputError, ProcedureError
from ..results import Action, CsrRecord, StepResult
from ..scenarios import RENEW_TOMCAT
from ..session import SiteSession
from ..sites import Node
from .base import step
from .ca_signed import CaSigned, _csr_record

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

    ``multi_san``: one multi-server SAN CSR on the UCCX publisher for the publisher and
    subscriber (UCCX 11.6(2)+; refused with one line where a cluster node is older), signed
    once, uploaded on the publisher (the node distributes it to the cluster, Cisco 118731);
    other nodes (SocialMiner) keep one CSR each.
    """

    unit = topology.RSA_UNIT
    client = "rsa"
    scenario = RENEW_TOMCAT.name
    key_sizes = RSA_KEY_SIZES

    def __init__(self, session: SiteSession, ca: CertificateAuthority, *, renew: bool = True,
                 min_days: int = 30, key_size: int | None = None,
                 hash_algorithm: str | None = None, multi_san: bool = False) -> None:
        super().__init__(session, ca, renew=renew, min_days=min_days, key_size=key_size,
                         hash_algorithm=hash_algorithm)
        self.multi_san = multi_san
        self._versions: dict[str, str] = {}

    def browser_unit(self, node: Node, port: int) -> str | None:
        """The renewed tomcat on every port of a node with no tomcat-ECDSA (11.6+); where
        tomcat-ECDSA is still used (CUCM) it depends on that one, which this run leaves
        alone: None (``verify`` then wants the renewed tomcat wherever RSA is shown)."""
        if not topology.ecdsa_in_use(node.role, self._version(node)):
            return self.unit
        return None

    # ------------------------------------------------------------------ multi-SAN
    def cluster(self) -> tuple[Node | None, list[Node]]:
        """With ``multi_san``: the UCCX publisher and its subscribers in this session."""
        if not self.multi_san:
            return None, []
        nodes = [n for n in self.session.nodes if n.spec.product == "uccx"]
        pub = next((n for n in nodes if n.spec.publisher), None)
        return pub, [n for n in nodes if not n.spec.publisher]

    def _check_multi_san(self) -> None:
        pub, subs = self.cluster()
        if pub is None or not subs:
            raise InputError("multi_san needs the UCCX publisher and subscriber in this run",
                             hint="select both UCCX nodes, or set multi_san = False")
        old = [f"{n.name} runs {self._version(n)}" for n in (pub, *subs)
               if not topology.multi_san_available(n.role, self._version(n))]
        if old:
            raise InputError("multi_san needs UCCX 11.6(2) or later on both UCCX nodes; "
                             + ", ".join(old),
                             hint="set multi_san = False (one CSR per node)")

    def _csr_one(self, node: Node, regenerate: bool) -> tuple[CsrRecord, object]:
        pub, subs = self.cluster()
        if node in subs:  # the publisher's CSR (checked after it is made)
            return CsrRecord(node.name, Action.REUSED, "", (), "", "",
                             "the publisher's multi-server CSR"), None
        if node != pub:
            return super()._csr_one(node, regenerate)
        fqdns = {f"DNS:{n.fqdn}" for n in (pub, *subs)}
        s = self.session
        with s.on(node) as t:
            csr = None if regenerate else t.pending_csr(self.unit)
            if csr is not None and fqdns <= set(certs.describe_csr(csr)["sans"].split(", ")):
                return _csr_record(node.name, Action.REUSED, csr), csr
            with operation(s.audit, node.name, "generate_csr",
                           {"unit": self.unit, "multi_server": True}) as op:
                csr = t.generate_multi_server_csr(self.unit)
                op.after = {"csr_public_key_sha256": certs.public_key_sha256(csr)}
        return _csr_record(node.name, Action.GENERATED, csr, "multi-server SAN"), csr

    @step()
    def generate_csrs(self, *, regenerate: bool = False) -> StepResult:
        """Generate (or reuse) the CSRs on the nodes; with ``multi_san`` one for the UCCX
        cluster, made on the publisher, which must then be pending on the subscriber too."""
        if self.multi_san:
            self._check_multi_san()
        result = super().generate_csrs(regenerate=regenerate)
        pub, subs = self.cluster()
        if pub is not None and pub.name in self.csrs:
            want = certs.public_key_sha256(self.csrs[pub.name])
            for sub in subs:
                with self.session.on(sub) as t:
                    got = t.pending_csr(self.unit)
                if got is None or certs.public_key_sha256(got) != want:
                    raise ProcedureError("the multi-server CSR is not pending on the subscriber",
                                         node=sub.name, unit=self.unit,
                                         hint="rerun generate_csrs with regenerate=True")
                self.csrs[sub.name] = self.csrs[pub.name]
        return result

    def _sign_all(self) -> dict[str, SignedCertificate]:
        """Each CSR once: the multi-server CSR is signed for the publisher only, and the
        subscriber gets the same certificate."""
        pub, subs = self.cluster()
        names = {n.name for n in subs}
        saved, self.csrs = self.csrs, {n: c for n, c in self.csrs.items() if n not in names}
        try:
            signed = super()._sign_all()
        finally:
            self.csrs = saved
        if pub is not None and pub.name in signed:
            for sub in subs:
                signed[sub.name] = dataclasses.replace(signed[pub.name], node=sub.name)
        return signed

    def _upload_groups(self) -> list[list[Node]]:
        """With ``multi_san``: the publisher (and SocialMiner) first; the subscriber then
        already stores the distributed certificate (checked, not uploaded again)."""
        pub, subs = self.cluster()
        if pub is None:
            return super()._upload_groups()
        return [[n for n in self.session.nodes if n not in subs], subs]

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
        r = certs.check_signed_certificate(
            sc.certificate, self.csrs[name], list(sc.chain), unit=self.unit, now=now,
            require_eku=required_eku(node, self._version(node)), installed=installed)
        pub, subs = self.cluster()
        if node == pub or node in subs:  # the multi-SAN set: every cluster FQDN named
            missing = [n.fqdn for n in (pub, *subs) if f"DNS:{n.fqdn}" not in r.leaf.sans]
            if missing:
                r = dataclasses.replace(r, reasons=(*r.reasons, GateReason(
                    GateCode.SAN_MISMATCH, "the multi-server certificate does not name "
                    + ", ".join(missing))))
        return r

