"""What is due on a site, from what the inventory read (records only; nothing is contacted).

Only renewals of what a site already has, each by the scenario the registry names as the
renewer of its certificate unit (:func:`cckit.scenarios.renewing`), in renewal mode: a
CA-signed, EC-signed ``tomcat-ECDSA`` on a release that uses it (UCCX 11.5, SocialMiner 11.5)
with ``renew_before`` days left or fewer (``ca_signed``); the CA-signed RSA ``tomcat`` on a
release without ECDSA (UCCX 11.6+; ``renew_tomcat``), a multi-server SAN certificate as one
again. Anything else that is expiring (a self-signed certificate, an RSA-signed
tomcat-ECDSA, an ECDSA disabled by the COP, the RSA tomcat of an 11.5 node) would mean
another scenario: it is a :class:`Note`, never a job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import scenarios, topology
from ..certs import VOS_EC_CURVES
from ..fleet.records import CertRow, NodeRow, SiteInventory
from ..scenarios import Scenario
from ..sites import Site

__all__ = ["Held", "Job", "Note", "find_due", "own_cert"]

#: the CSR hash per EC key size, as strong as the key (VOS: SHA256/384/512)
_EC_HASH = {256: "SHA256", 384: "SHA384", 521: "SHA512"}
_RSA_SIZES = (2048, 3072, 4096)


@dataclass(frozen=True)
class Held:
    """A certificate as a node holds it now (before a renewal, or after it)."""

    node: str
    unit: str
    serial: str
    sha256: str
    not_after: dt.datetime
    days_left: int
    key_bits: int = 0

    @classmethod
    def of(cls, row: CertRow) -> Held:
        return cls(row.node, row.unit, row.serial, row.sha256, row.not_after, row.days_left,
                   row.key_bits)

    def as_json(self) -> dict[str, Any]:
        return {"node": self.node, "unit": self.unit, "serial": self.serial,
                "sha256": self.sha256, "not_after": self.not_after.isoformat(),
                "days_left": self.days_left}


@dataclass(frozen=True)
class Job:
    """One runbook run that renews ``unit`` on ``nodes`` (by the unit's renewer)."""

    unit: str
    nodes: tuple[str, ...]
    #: the certificates it replaces, one per node
    old: tuple[Held, ...]
    multi_san: bool = False
    key_size: int | None = None
    hash_algorithm: str | None = None

    @property
    def scenario(self) -> Scenario:
        """The scenario that renews :attr:`unit` (the registry's renewer)."""
        sc = scenarios.renewing(self.unit)
        if sc is None:
            raise ValueError(f"no scenario renews {self.unit}")
        return sc

    def parameters(self) -> dict[str, Any]:
        """The runbook's parameters for this job (the CA and the confirmation aside)."""
        params: dict[str, Any] = {"nodes": list(self.nodes), "renew": True}
        if self.key_size:
            params["key_size"] = self.key_size
        if self.hash_algorithm:
            params["hash_algorithm"] = self.hash_algorithm
        if "multi_san" in self.scenario.parameters():  # the runbooks that issue SAN ones
            params["multi_san"] = self.multi_san
        return params

    def describe(self) -> str:
        text = (f"{self.scenario.name}: {self.unit} on {', '.join(self.nodes)}"
                + (" (one multi-server SAN certificate)" if self.multi_san else ""))
        if self.old:
            soonest = min(self.old, key=lambda h: h.not_after)
            text += f"; {soonest.node}'s expires {soonest.not_after:%Y-%m-%d}"
        return text


@dataclass(frozen=True)
class Note:
    """Something expiring that the autopilot leaves to a person, and why."""

    node: str
    unit: str
    text: str


def own_cert(inv: SiteInventory, node: str, unit: str) -> CertRow | None:
    """The certificate ``node`` holds as ``unit`` (its own store), as the inventory read it."""
    return next((c for c in inv.certs if c.node == node and c.store == "own"
                 and c.unit == unit and c.file.endswith(f"{unit}.pem")), None)


def _ecdsa(row: CertRow, node: NodeRow, renew_before: int
           ) -> tuple[bool, str | None]:
    """(due, why not automated) for a node's tomcat-ECDSA."""
    if row.days_left > renew_before or not node.ecdsa_in_use:
        return False, None
    left = f"{row.unit} has {row.days_left} days left"
    if row.self_signed:
        return False, None  # a self-signed site stays self-signed
    if node.ecdsa_cop == "disable":
        return False, f"{left}, but the ECDSA disable COP is in effect (RSA-only site)"
    if row.key_type != "EC" or row.signed_with != "EC":
        return False, (f"{left}, signed with {row.signed_with}: the fix is another scenario "
                       f"({scenarios.RSA_ONLY.name}, or a CA with an EC key), not a renewal")
    return True, None


def _rsa(row: CertRow, node: NodeRow, renew_before: int) -> tuple[bool, str | None]:
    if row.days_left > renew_before or row.self_signed:
        return False, None
    left = f"{row.unit} has {row.days_left} days left"
    if node.ecdsa_in_use is not False:
        renewer = scenarios.renewing(row.unit)
        return False, (f"{left}: the autopilot renews the RSA tomcat on releases without "
                       "ECDSA (11.6+) only"
                       + (f"; renew it with the {renewer.name} runbook" if renewer else ""))
    if row.key_type != "RSA":
        return False, f"{left}, but its key is {row.key_type}, not RSA"
    return True, None


def _multi_san(site: Site, inv: SiteInventory, due: Sequence[CertRow]) -> tuple[bool, set[str]]:
    """Whether the UCCX publisher's tomcat names its subscribers too (a multi-server SAN
    certificate, Cisco 118731): then it is renewed as one again, for the whole cluster."""
    pub = site.publisher
    row = own_cert(inv, pub.name, topology.RSA_UNIT)
    subs = [n for n in site.subscribers]
    if row is None or not subs:
        return False, set()
    named = {s.split(":", 1)[-1].lower() for s in row.sans}
    if not all(n.fqdn.lower() in named for n in subs):
        return False, set()
    cluster = {pub.name, *(n.name for n in subs)}
    return bool(cluster & {r.node for r in due}), cluster


def _ecdsa_job(site: Site, inv: SiteInventory, due: list[CertRow]) -> Job:
    bits = max(r.key_bits for r in due)
    size = bits if bits in VOS_EC_CURVES.values() else None
    return Job(topology.ECDSA_UNIT, tuple(r.node for r in due), tuple(Held.of(r) for r in due),
               key_size=size, hash_algorithm=_EC_HASH.get(size or 0))


def _rsa_job(site: Site, inv: SiteInventory, due: list[CertRow]) -> Job:
    multi, cluster = _multi_san(site, inv, due)
    rows = list(due)
    if multi:  # the cluster's one certificate: every member, due or not
        rows += [r for n in sorted(cluster - {r.node for r in due})
                 if (r := own_cert(inv, n, topology.RSA_UNIT)) is not None]
    order = [n.name for n in site.nodes]
    rows.sort(key=lambda r: order.index(r.node))
    bits = max(r.key_bits for r in rows)
    size = min((s for s in _RSA_SIZES if s >= bits), default=_RSA_SIZES[-1])
    return Job(topology.RSA_UNIT, tuple(r.node for r in rows), tuple(Held.of(r) for r in rows),
               multi_san=multi, key_size=size, hash_algorithm="SHA256")


#: per certificate unit the autopilot renews: what makes a node's certificate due, and the
#: job that renews the due ones (run by the registry's renewer of that unit)
_UNITS = {topology.ECDSA_UNIT: (_ecdsa, _ecdsa_job), topology.RSA_UNIT: (_rsa, _rsa_job)}


def find_due(site: Site, inv: SiteInventory, renew_before: int
             ) -> tuple[list[Job], list[Note]]:
    """The renewals due on ``site`` (at most one job per unit, so per scenario) and what is
    left to a person. ``inv`` is what the inventory's read-only collection read."""
    nodes = {n.node: n for n in inv.nodes}
    due: dict[str, list[CertRow]] = {unit: [] for unit in _UNITS
                                     if scenarios.renewing(unit) is not None}
    notes: list[Note] = []
    for node in site.nodes:
        info = nodes.get(node.name)
        if info is None or not info.version:
            continue
        for unit, rows in due.items():
            row = own_cert(inv, node.name, unit)
            if row is None:
                continue
            is_due, why = _UNITS[unit][0](row, info, renew_before)
            if is_due:
                rows.append(row)
            elif why:
                notes.append(Note(node.name, unit, why))
    return [_UNITS[unit][1](site, inv, rows) for unit, rows in due.items() if rows], notes
