"""CA-signed tomcat-ECDSA: CSR on every node, sign, gate, trust, identity, restart, verify.

Each step is one function over a :class:`SiteSession`; each is idempotent, so a rerun after
a failure resumes: a pending CSR is never regenerated (a signed certificate for it may be on
its way back from the CA), a trust certificate already present is skipped by fingerprint,
an identity already stored is not imported again, a node already presenting the new
certificate is not restarted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from cryptography import x509

from .. import certs, topology
from ..audit import operation, read
from ..ca import CertificateAuthority, SignedCertificate, sign_all
from ..certs import GateCode
from ..errors import CckitError, GateError, InputError, ProcedureError
from ..orchestration import parallel, restart_nodes, restart_waves, wait_replicated
from ..results import (
    Action,
    CsrRecord,
    GateRecord,
    IdentityRecord,
    Outcome,
    Plan,
    SignedRecord,
    StepResult,
    TrustRecord,
    VerifyRecord,
)
from ..scenarios import CA_SIGNED
from ..session import SiteSession
from ..sites import Node
from ..topology import ECDSA_UNIT as UNIT
from .base import Procedure, step

__all__ = ["CaSigned", "trust_targets"]


def trust_targets(session: SiteSession) -> tuple[Node, ...]:
    """Where CA certificates go: each publisher (trust replicates to its subscribers) and
    each node that needs its own (SocialMiner); see the topology."""
    return session.site.trust_targets(session.nodes)


def _trust_files(session: SiteSession, node: Node,
                 wanted: Iterable[x509.Certificate]) -> dict[str, str]:
    with session.on(node) as t:
        return t.trust_files(wanted)


class CaSigned(Procedure):
    """The CA-signed procedure over one site session, one method per step.

    Steps pass their results along on the object, so a notebook calls one method per cell.
    A node whose stored tomcat-ECDSA is already CA-signed (EC-signed, more than
    ``min_days`` left) and has no pending CSR is left alone unless ``renew``.
    """

    #: the unit renewed and the TLS client that sees it (renew_tomcat: tomcat, rsa)
    unit: str = UNIT
    client: str = "ecdsa"
    scenario: str = CA_SIGNED.name
    key_sizes: tuple[int, ...] = tuple(certs.VOS_EC_CURVES.values())
    waits = ("replication_timeout", "in_service_timeout")

    def __init__(self, session: SiteSession, ca: CertificateAuthority, *, renew: bool = False,
                 min_days: int = 30, key_size: int | None = None,
                 hash_algorithm: str | None = None) -> None:
        if key_size is not None and key_size not in self.key_sizes:
            raise InputError(f"{self.unit} key size must be "
                             f"{', '.join(map(str, self.key_sizes))}, not {key_size}")
        super().__init__(session)
        self.ca = ca
        self.renew = renew
        self.min_days = min_days
        self.key_size = key_size
        self.hash_algorithm = hash_algorithm
        self.csrs: dict[str, x509.CertificateSigningRequest] = {}
        self.current: dict[str, x509.Certificate] = {}  # nodes already done
        self.signed: dict[str, SignedCertificate] = {}

    # ------------------------------------------------------------------ helpers
    def _stored(self, node: Node) -> x509.Certificate | None:
        with self.session.on(node) as t:
            try:
                return t.get_certificate("own", f"{self.unit}/{self.unit}.pem")
            except CckitError:
                return None

    def _is_done(self, cert: x509.Certificate | None) -> bool:
        if cert is None:
            return False
        info = certs.describe(cert)
        return (not info.self_signed and info.key_type == "EC" and info.signed_with == "EC"
                and info.days_left > self.min_days)

    def _leave_alone(self, node: Node) -> x509.Certificate | None:
        """The node's stored certificate if it is done: CA-signed and, when renewing, the one
        this run folder's operation log imported (a rerun of an interrupted renewal passes
        ``renew`` again, and must not renew a node twice)."""
        stored = self._stored(node)
        if not self._is_done(stored):
            return None
        assert stored is not None
        if not self.renew:
            return stored
        imported = [(r.get("fingerprints_after") or {}).get(self.unit)
                    for r in read(self.session.audit.path)
                    if r.get("node") == node.name and r.get("operation") == "upload_identity"
                    and r.get("outcome") == "ok"]
        return stored if certs.fingerprint_sha256(stored) in imported else None

    def expected(self) -> dict[str, str]:
        """Node -> sha256 of the tomcat-ECDSA certificate it should present when done."""
        out = {n: certs.fingerprint_sha256(c) for n, c in self.current.items()}
        out.update({n: certs.fingerprint_sha256(s.certificate) for n, s in self.signed.items()})
        return out

    # ------------------------------------------------------------------ plan
    def plan(self) -> Plan:
        """The commands this procedure would send now; read-only."""
        s = self.session
        p = Plan(self.scenario)
        p.notes.append(f"CA: {self.ca.describe()}")
        todo = []
        for node in s.nodes:
            with s.on(node) as t:
                csr = t.pending_csr(self.unit)
            if csr is not None:
                p.add(node.name, "generate_csrs", s.command(node, "show_csr", unit=self.unit),
                      "reuse the pending CSR (a certificate may be on its way)")
            elif self._leave_alone(node) is not None:
                p.notes.append(f"{node.name}: {self.unit} is already CA-signed; left alone")
                continue
            else:
                p.add(node.name, "generate_csrs",
                      s.command(node, "generate_csr", unit=self.unit),
                      "no pending CSR on the node")
            todo.append(node)
        for node in trust_targets(s) if todo else []:
            p.add(node.name, "upload_trust", s.command(node, "upload_trust"),
                  "each root/intermediate not yet in tomcat-trust (skipped by fingerprint)",
                  stage=2)
        replicas = list(s.site.replicas(todo))
        for node in replicas:
            src = s.site.trust_source(node)
            p.add(node.name, "upload_trust", s.command(node, "list_trust"),
                  f"polled until the CA certificates have replicated from "
                  f"{src.name if src else 'the publisher'} (at most "
                  f"{self.replication_timeout:.0f} s)", stage=3)
        stage = 4 if replicas else 3
        for node in todo:
            p.add(node.name, "upload_identities",
                  s.command(node, "upload_identity", unit=self.unit),
                  "after the gate; skipped when already stored", stage=stage)
        for wave, nodes in enumerate(restart_waves(s.nodes)):
            for node in nodes:
                for service in node.restart_services():
                    p.add(node.name, "restart", s.command(node, "restart", service=service),
                          "unless it already presents the new certificate; subscriber first, "
                          "the publisher once the others are back (this node is back at: "
                          + _back(node, self.in_service_timeout) + ")",
                          stage=stage + 1 + wave)
        return p

    # ------------------------------------------------------------------ steps
    def _csr_one(self, node: Node, regenerate: bool) -> tuple[CsrRecord, object]:
        """One node's CSR: the pending one reused, or a new one (or the node left alone)."""
        s = self.session
        with s.on(node) as t:
            csr = None if regenerate else t.pending_csr(self.unit)
            action = Action.REUSED
            if csr is None and not regenerate:
                stored = self._leave_alone(node)
                if stored is not None:
                    return _csr_record(node.name, Action.ALREADY_CA_SIGNED, stored), stored
            if csr is None:
                with operation(s.audit, node.name, "generate_csr",
                               {"unit": self.unit, "key_size": self.key_size,
                                "hash": self.hash_algorithm}) as op:
                    csr = t.generate_csr(self.unit, key_size=self.key_size,
                                         hash_algorithm=self.hash_algorithm)
                    op.after = {"csr_public_key_sha256": certs.public_key_sha256(csr)}
                action = Action.GENERATED
        bits = getattr(csr.public_key(), "key_size", None)
        note = (f"asked for {self.key_size} bits; the node made {bits} (the VOS CLI uses "
                "the node's default)" if self.key_size and bits != self.key_size else "")
        return _csr_record(node.name, action, csr, note), csr

    @step()
    def generate_csrs(self, *, regenerate: bool = False) -> StepResult:
        """Steps 2-5 of the procedure: Generate CSR for tomcat-ECDSA, then Download CSR.

        A pending CSR is reused unless ``regenerate``: generating replaces the key, and a
        certificate the CA signs for the old CSR could then never be imported.
        """
        s = self.session
        self.csrs, self.current = {}, {}

        def one(node: Node) -> tuple[CsrRecord, object]:
            return self._csr_one(node, regenerate)

        # Every node at once: a CSR takes the node seconds to a minute.
        records = []
        for record, obj in parallel(s.nodes, one):
            records.append(record)
            if record.action is Action.ALREADY_CA_SIGNED:
                self.current[record.node] = obj  # type: ignore[assignment]
            else:
                self.csrs[record.node] = obj  # type: ignore[assignment]
        gen = sum(r.action is Action.GENERATED for r in records)
        return StepResult(
            "generate_csrs",
            f"{len(self.csrs)} CSR(s) ready ({gen} generated, {len(self.csrs) - gen} reused)"
            + (f", {len(self.current)} node(s) already CA-signed" if self.current else ""),
            records)

    def _sign_all(self) -> dict[str, SignedCertificate]:
        """Every CSR through the CA (WaitingForCA while any is outstanding)."""
        return sign_all(self.ca, self.csrs) if self.csrs else {}

    @step(after=("generate_csrs",))
    def sign(self) -> StepResult:
        """Step 6: send the CSRs to the CA and collect the signed certificates.

        Raises :class:`~cckit.errors.WaitingForCA` while any is outstanding: rerun later,
        the same CSRs are picked up again.
        """
        self.signed = self._sign_all()
        self.done -= {"gate", "upload_trust", "upload_identities", "restart"}
        records = []
        for n, sc in self.signed.items():
            info = certs.describe(sc.certificate)
            records.append(SignedRecord(
                n, info.subject_cn, info.issuer_cn, info.signature_algorithm,
                tuple(certs.describe(c).subject_cn for c in sc.chain), info.sha256, sc.source))
        return StepResult("sign", f"{len(self.signed)} certificate(s) back from "
                          f"{self.ca.describe()}", records,
                          Outcome.OK if records else Outcome.NOTHING_TO_DO)

    def _check(self, name: str, sc: SignedCertificate,
               now: dt.datetime | None) -> certs.GateResult:
        """The gate's verdict on one node's signed certificate (read-only)."""
        return certs.check_signed_certificate(sc.certificate, self.csrs[name], list(sc.chain),
                                              unit=self.unit, now=now)

    def _probed_key(self) -> object | None:
        """The CA's signing key for the gate's hint; None when the probe cannot tell."""
        try:
            return self.ca.signing_key()
        except CckitError:
            return None

    @step(after=("sign",))
    def gate(self, *, now: dt.datetime | None = None) -> StepResult:
        """Before anything is uploaded, every certificate must pass the tomcat-ECDSA gate.

        One failure stops the procedure with every reason for every node; nothing changes.
        """
        records, failures, codes = [], [], set()
        for name, sc in self.signed.items():
            r = self._check(name, sc, now)
            records.append(GateRecord(name, r.ok, r.reasons, r.leaf.sha256))
            failures.extend(f"{name}: {reason}" for reason in r.reasons)
            codes |= r.codes
        if failures:
            rsa = GateCode.RSA_SIGNED in codes
            raise GateError(
                failures, unit=self.unit,
                hint=("nothing was uploaded: every node keeps its certificates, and the "
                      "pending CSRs stay for the rerun; " + certs.rsa_signed_hint(
                          self._probed_key()) if rsa else
                      "nothing was uploaded: every node keeps its certificates, and the "
                      "pending CSRs stay for the rerun; get corrected certificates from the "
                      "CA and rerun"))
        return StepResult("gate", f"all {len(records)} certificate(s) pass the {self.unit} "
                          "gate", records, Outcome.OK if records else Outcome.NOTHING_TO_DO)

    @step(after=("gate",))
    def upload_trust(self) -> StepResult:
        """Upload the root and intermediates as tomcat-trust: once on the UCCX publisher (it
        replicates to the subscriber) and on SocialMiner; skip what is already there."""
        s = self.session
        ca_certs: dict[str, x509.Certificate] = {}
        for sc in self.signed.values():
            for c in reversed(sc.chain):  # root first
                ca_certs.setdefault(certs.fingerprint_sha256(c), c)

        def one(node: Node) -> list[TrustRecord]:
            out = []
            present = _trust_files(s, node, ca_certs.values())
            for fp, cert in ca_certs.items():
                cn = certs.describe(cert).subject_cn
                if fp in present:
                    out.append(TrustRecord(node.name, cn, Action.ALREADY_PRESENT, fp))
                    continue
                with s.on(node) as t, operation(s.audit, node.name, "upload_trust",
                                                {"unit": "tomcat-trust", "subject": cn}) as op:
                    t.upload_trust(cert)
                    op.after = {"tomcat-trust": fp}
                out.append(TrustRecord(node.name, cn, Action.UPLOADED, fp))
            return out

        # The publisher and SocialMiner at once; on each, root first, one after the other.
        records = [r for rs in parallel(trust_targets(s) if ca_certs else (), one) for r in rs]
        # Then the subscribers, which receive it by replication, some time later: polled
        # (bounded) until every CA their certificate needs is there. A rerun resumes here.
        needs = {n.name: tuple(reversed(self.signed[n.name].chain))  # root first
                 for n in s.site.replicas(s.nodes)
                 if n.name in self.signed and self.signed[n.name].chain}
        records += wait_replicated(s, needs, timeout=self.replication_timeout)
        uploaded = sum(r.action is Action.UPLOADED for r in records)
        replicated = sum(r.action is Action.REPLICATED for r in records)
        return StepResult.tally(
            "upload_trust", records, Action.UPLOADED,
            "{n} trust certificate(s) uploaded, "
            + (f"{replicated} replicated, " if replicated else "")
            + f"{len(records) - uploaded - replicated} already present")

    def _upload_groups(self) -> list[list[Node]]:
        """The nodes whose identity uploads run at once, group after group."""
        return [list(self.session.nodes)]

    @step(after=("gate", "upload_trust"))
    def upload_identities(self) -> StepResult:
        """Upload each node's signed certificate as tomcat-ECDSA (skipped when stored)."""
        s = self.session

        def one(node: Node) -> IdentityRecord:
            sc = self.signed[node.name]
            new_fp = certs.fingerprint_sha256(sc.certificate)
            stored = self._stored(node)
            before = certs.fingerprint_sha256(stored) if stored is not None else None
            if before == new_fp:
                return IdentityRecord(node.name, Action.ALREADY_STORED, new_fp, before)
            issuer = sc.chain[0] if sc.chain else None
            # The subscriber's store holds what was replicated from the publisher.
            files = _trust_files(s, node, sc.chain)
            ca_file = files.get(certs.fingerprint_sha256(issuer)) if issuer is not None else None
            if ca_file is None:
                raise ProcedureError(
                    f"the issuer {certs.describe(issuer).subject_cn if issuer else '?'!r} is "
                    "not in the node's tomcat-trust", node=node.name, unit=self.unit,
                    hint="rerun upload_trust: it uploads what is missing and waits until "
                    "the subscriber has it by replication")
            with s.on(node) as t, operation(s.audit, node.name, "upload_identity",
                                            {"unit": self.unit, "ca_file": ca_file},
                                            before={self.unit: before}) as op:
                t.upload_identity(self.unit, sc.certificate, ca_file)
                op.after = {self.unit: new_fp}
            return IdentityRecord(node.name, Action.IMPORTED, new_fp, before)

        # Every node at once (per group); a node whose import fails keeps its old one.
        records = [r for group in self._upload_groups()
                   for r in parallel([n for n in group if n.name in self.signed], one)]
        return StepResult.tally("upload_identities", records, Action.IMPORTED,
                                "{n} identity certificate(s) imported, {rest} already stored")

    @step(after=("upload_identities",))
    def restart(self, *, timeout: float = 600) -> StepResult:
        """Step 8: restart the services in HA-safe order so the new certificates are used.

        The subscriber goes first and must be back (TLS, then Finesse IN_SERVICE) before the
        publisher restarts, so agents always have one UCCX node. A node already presenting
        its expected certificate to an ECDSA client is skipped (and still checked).
        """
        return restart_nodes(self.session, self.expected(), timeout=timeout, unit=self.unit,
                             client=self.client, in_service_timeout=self.in_service_timeout)

    @step(after=("restart",))
    def verify(self) -> StepResult:
        """Every web port presents the node's CA-signed certificate to an ECDSA client, and
        a browser is shown it where its web server chooses this unit (Cisco 210528: Live
        Data and chat for tomcat-ECDSA), the other unit elsewhere."""
        s = self.session
        expected = self.expected()
        nodes = {n.name: n for n in s.nodes}
        records = []
        for v in s.presented_to(s.nodes, (self.client, "browser")):
            want = expected.get(v.node)
            unit = (self.unit if v.client == self.client
                    else self.browser_unit(nodes[v.node], v.port))
            if unit is None:  # either identity: this run's wherever its key type is shown
                unit = next((u for u, k in topology.KEY_TYPES.items()
                             if v.cert is not None and v.cert.key_type == k), self.unit)
            if unit == self.unit:
                records.append(VerifyRecord(v, f"the CA-signed {self.unit}",
                                            want is not None and v.sha256 == want))
            else:  # the other identity, as before; only its key type is ours to check
                records.append(VerifyRecord(v, f"{unit}, as Cisco 210528 says",
                                            v.cert is not None
                                            and v.cert.key_type == topology.KEY_TYPES[unit]))
        bad = sum(not r.ok for r in records)
        shown = sorted({r.view.port_label for r in records
                        if r.view.client == "browser" and r.expected.startswith("the CA")},
                       key=lambda label: (len(label), label))
        verdict = (f"every port presents the CA-signed {self.unit} certificate to an "
                   f"{self.client.upper()} client, and browsers are shown it on "
                   f"{', '.join(shown) or 'no port'}" if not bad
                   else f"{bad} port view(s) do not present the expected certificate")
        return StepResult("verify", verdict, records, Outcome.FAILED if bad else Outcome.OK)

    def browser_unit(self, node: Node, port: int) -> str | None:
        """Which identity ``node``'s ``port`` presents to a browser once this run's
        certificate is in place: the new tomcat-ECDSA is EC-signed (the gate saw to it)."""
        return node.spec.to_browser(port, topology.EcdsaState.EC_SIGNED) or self.unit

    def run_all(self) -> list[StepResult]:
        """Every step in order (what a headless run does)."""
        return [self.generate_csrs(), self.sign(), self.gate(), self.upload_trust(),
                self.upload_identities(), self.restart(), self.verify()]


def _back(node: Node, in_service_timeout: float) -> str:
    """What "back" means for ``node`` before the next wave (topology), and its bound."""
    check = node.spec.readiness
    return (f"TLS up, then {check.label}, at most {in_service_timeout:.0f} s" if check
            else "TLS up")


def _csr_record(node: str, action: Action,
                obj: x509.CertificateSigningRequest | x509.Certificate,
                note: str = "") -> CsrRecord:
    if isinstance(obj, x509.Certificate):
        info = certs.describe(obj)
        cn, sans, key = info.subject_cn, info.sans, f"{info.key_type} {info.key_detail}"
    else:
        d = certs.describe_csr(obj)
        cn, sans, key = d["cn"], tuple(d["sans"].split(", ")) if d["sans"] else (), d["key"]
    return CsrRecord(node, action, cn, sans, key, certs.public_key_sha256(obj), note)
