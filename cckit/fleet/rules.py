"""Findings from a site's inventory: each with a severity and the runbook that fixes it.

Pure functions of the records (no node is contacted), one per rule, each reporting one root
cause once: a trust-store copy of an identity is reported with the identity, a subscriber's
replicated trust gap with its publisher, several ports showing the same wrong certificate in
one finding, a COP rule only where the certificate rules said nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .. import topology
from ..scenarios import CA_SIGNED, PREFLIGHT, RSA_ONLY, SELF_SIGNED, renewing
from ..topology import ECDSA_UNIT, RSA_UNIT
from .records import CertRow, Code, CsrRow, Finding, NodeRow, PortRow, Severity, SiteInventory

__all__ = ["TITLES", "Policy", "findings"]

#: one line per finding code, for people
TITLES = {
    Code.EXPIRED: "certificate expired",
    Code.EXPIRING: "certificate expires soon",
    Code.ECDSA_SELF_SIGNED: "tomcat-ECDSA self-signed while tomcat is CA-signed",
    Code.RSA_SIGNED_ECDSA: "tomcat-ECDSA signed with RSA",
    Code.NO_CLIENT_AUTH: "clientAuth EKU missing",
    Code.TRUST_MISSING_CA: "tomcat-trust lacks a CA of an identity",
    Code.PORT_MISMATCH: "a web port presents another certificate",
    Code.DISABLE_COP_CA_SIGNED: "ECDSA disabled although tomcat-ECDSA is CA-signed",
    Code.ROLLBACK_COP_SELF_SIGNED: "ECDSA enabled again with a self-signed tomcat-ECDSA",
    Code.OLD_CSR: "CSR pending for long",
    Code.AGENTS_PROMPTED: "agents' browsers shown a self-signed or RSA-signed tomcat-ECDSA",
    Code.NOT_INVENTORIED: "node not (fully) inventoried",
}


@dataclass(frozen=True)
class Policy:
    """``thresholds``: days left that make an expiry finding, the nearest the most severe
    (high, medium, low); ``csr_days``: how long a CSR may stay pending."""

    thresholds: tuple[int, ...] = (30, 60, 90)
    csr_days: int = 30

    def expiry_severity(self, days_left: int) -> Severity | None:
        if days_left < 0:
            return Severity.CRITICAL
        levels = (Severity.HIGH, Severity.MEDIUM, Severity.LOW)
        for i, limit in enumerate(sorted(self.thresholds)):
            if days_left <= limit:
                return levels[min(i, len(levels) - 1)]
        return None


class _Site:
    """Lookups over one site's records."""

    def __init__(self, inv: SiteInventory) -> None:
        self.inv = inv
        self.nodes = {n.node: n for n in inv.nodes}
        self.own: dict[tuple[str, str], CertRow] = {
            (c.node, c.unit): c for c in inv.certs if c.store == "own"}
        self.identity_sha = {c.sha256 for c in inv.certs if c.store == "own"}

    def ecdsa_offered(self, node: NodeRow) -> bool:
        """tomcat-ECDSA is in use on the node's release and no disable COP is in effect."""
        return bool(node.ecdsa_in_use) and node.ecdsa_cop != "disable"

    def finding(self, severity: Severity, code: Code, node: str, unit: str, subject: str,
                message: str, runbook: str, fix: str, ident: str = "") -> Finding:
        return Finding(severity, code, self.inv.site, node, unit, subject, message, runbook,
                       fix, ident)


def _expiry_fix(c: CertRow) -> tuple[str, str]:
    if c.store == "trust":
        return "", ("import the CA's renewed certificate (set cert import trust tomcat), then "
                    f"delete the old one (set cert delete trust {c.file})")
    sc = renewing(c.unit)  # the scenario that (re)issues this unit, from the registry
    if sc is None:
        return "", f"renew {c.unit} in OS Administration; no cckit runbook changes {c.unit}"
    if c.self_signed and c.unit == ECDSA_UNIT:
        return sc.name, (f"{sc.name} (a CA-signed {c.unit}); or set cert regen {c.unit} and "
                         "restart Cisco Tomcat")
    return sc.name, f"{sc.name} with renew = True"


def _expiry(s: _Site, policy: Policy) -> Iterator[Finding]:
    for c in s.inv.certs:
        if c.store == "trust" and c.sha256 in s.identity_sha:
            continue  # the trust copy of an identity: reported with the identity
        sev = policy.expiry_severity(c.days_left)
        if sev is None:
            continue
        runbook, fix = _expiry_fix(c)
        what = (f"expired {-c.days_left} day(s) ago" if c.days_left < 0
                else f"expires in {c.days_left} day(s)")
        yield s.finding(sev, Code.EXPIRED if c.days_left < 0 else Code.EXPIRING, c.node,
                        c.unit, c.subject, f"{c.store} {c.unit} {c.subject!r} {what} "
                        f"(not after {c.not_after:%Y-%m-%d %H:%M} UTC)", runbook, fix, c.serial)


def _ecdsa_signing(s: _Site) -> Iterator[Finding]:
    for node in s.inv.nodes:
        ecdsa, rsa = s.own.get((node.node, ECDSA_UNIT)), s.own.get((node.node, RSA_UNIT))
        if ecdsa is None or not s.ecdsa_offered(node):
            continue
        if ecdsa.self_signed and rsa is not None and not rsa.self_signed:
            yield s.finding(
                Severity.HIGH, Code.ECDSA_SELF_SIGNED, node.node, ECDSA_UNIT, ecdsa.subject,
                f"tomcat is CA-signed ({rsa.issuer}) but tomcat-ECDSA is self-signed: agents' "
                "browsers offering ECDSA are shown a certificate they do not trust",
                CA_SIGNED.name, f"{CA_SIGNED.name} (a CA that signs with an EC key); or "
                f"{RSA_ONLY.name}",
                ecdsa.serial)
        elif not ecdsa.self_signed and ecdsa.signed_with == "RSA":
            breaks = topology.spec(node.role).rsa_signed_ecdsa_breaks
            yield s.finding(
                Severity.CRITICAL if breaks else Severity.HIGH, Code.RSA_SIGNED_ECDSA,
                node.node, ECDSA_UNIT, ecdsa.subject,
                f"tomcat-ECDSA is signed with RSA by {ecdsa.issuer!r}: not presented to "
                "clients" + (f"; on this node it breaks {breaks}" if breaks else ""),
                RSA_ONLY.name, f"{RSA_ONLY.name} (action = disable); or {CA_SIGNED.name} "
                "with renew = True and a CA that signs with an EC key", ecdsa.serial)


def _client_auth(s: _Site) -> Iterator[Finding]:
    for c in s.own.values():
        node = s.nodes.get(c.node)
        if node is None or not node.version or c.self_signed or c.client_auth is not False:
            continue
        notice = topology.client_auth_notice(node.role, node.version, c.unit)
        if notice:
            yield s.finding(
                Severity.HIGH, Code.NO_CLIENT_AUTH, c.node, c.unit, c.subject,
                f"CA-signed {c.unit} has no clientAuth EKU; {notice}: nodes use it as a "
                "client certificate too, mutual TLS fails", "",
                f"have {c.unit} signed with serverAuth and clientAuth (a private CA, or the "
                f"public CA's client-auth chain); see {notice}", c.serial)


def _trust_gaps(s: _Site) -> Iterator[Finding]:
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for g in s.inv.gaps:
        groups[(g.node, g.missing)].append(g)
    for (node, missing), gs in sorted(groups.items()):
        row = s.nodes.get(node)
        spec = topology.spec(row.role) if row else None
        if spec is not None and not spec.trust_target and any(
                (n.node, missing) in groups for n in s.inv.nodes
                if topology.spec(n.role).publisher
                and topology.spec(n.role).product is spec.product):
            continue  # a subscriber's trust replicates from its publisher: reported there
        own = any(g.identity_node == node for g in gs)
        ids = ", ".join(sorted({f"{g.identity_node} {g.unit}" for g in gs}))
        yield s.finding(
            Severity.HIGH if own else Severity.MEDIUM, Code.TRUST_MISSING_CA, node,
            "tomcat-trust", missing, f"tomcat-trust lacks CA {missing!r}, which signs {ids}",
            CA_SIGNED.name, "import the CA certificate (set cert import trust tomcat) on "
            f"this node; {CA_SIGNED.name} with renew = True uploads every chain to each trust "
            "target")


def _expected(s: _Site, node: NodeRow, p: PortRow) -> str | None:
    """The sha256 the port should present to this client ("" = nothing; None: unchecked:
    a browser is shown one of the two, which the agents rule judges)."""
    service = next((w for w in topology.spec(node.role).web_services if p.port in w.ports),
                   None)
    if p.client == "browser":
        return None
    if p.client == "rsa":
        unit = RSA_UNIT
    elif node.ecdsa_cop == "disable":
        return ""
    elif node.ecdsa_in_use:
        unit = ECDSA_UNIT
    else:
        return None  # releases without tomcat-ECDSA: either answer is right
    if service is not None and unit not in service.presents:
        return None
    stored = s.own.get((node.node, unit))
    return stored.sha256 if stored else None


def _ports(s: _Site) -> Iterator[Finding]:
    groups: dict[tuple[str, str, str, str], list[PortRow]] = defaultdict(list)
    for p in s.inv.ports:
        node = s.nodes.get(p.node)
        if node is None or not node.version:
            continue
        want = _expected(s, node, p)
        got = p.sha256 if p.status == "ok" else ""
        if want is None or got == want:
            continue
        groups[(p.node, p.client, want, got or p.status)].append(p)
    for (node_name, client, want, _), ps in sorted(groups.items()):
        node, p = s.nodes[node_name], ps[0]
        ports = ", ".join(str(x.port) for x in ps)
        shown = (f"{p.subject!r} (issuer {p.issuer!r})" if p.status == "ok"
                 else f"nothing ({p.status})")
        unit = RSA_UNIT if client == "rsa" else ECDSA_UNIT
        stored = s.own.get((node_name, unit))
        if want == "":
            expected, runbook = "nothing (the disable COP is installed)", RSA_ONLY.name
            fix = f"restart the services (the {RSA_ONLY.name} runbook's restart step)"
        else:
            expected = f"the stored {unit} {stored.subject!r}" if stored else unit
            runbook = CA_SIGNED.name if unit == ECDSA_UNIT and stored \
                and not stored.self_signed else ""
            fix = ("restart the services so they load the stored certificate ("
                   f"{CA_SIGNED.name}'s restart step; or utils service restart Cisco Tomcat)"
                   if runbook else
                   "utils service restart for the service on these ports")
        yield s.finding(
            Severity.HIGH if p.status != "ok" and want else Severity.MEDIUM, Code.PORT_MISMATCH,
            node_name, unit, f"{client.upper()} client, port(s) {ports}",
            f"port(s) {ports} present {shown} to {client.upper()}-only clients; expected "
            f"{expected}", runbook, fix, f"{client} {ports}")


def _cops(s: _Site, reported: set[tuple[str, str]]) -> Iterator[Finding]:
    for node in s.inv.nodes:
        ecdsa, rsa = s.own.get((node.node, ECDSA_UNIT)), s.own.get((node.node, RSA_UNIT))
        if ecdsa is None or (node.node, ECDSA_UNIT) in reported:
            continue
        if node.ecdsa_cop == "disable" and not ecdsa.self_signed and ecdsa.signed_with == "EC":
            yield s.finding(
                Severity.LOW, Code.DISABLE_COP_CA_SIGNED, node.node, ECDSA_UNIT, ecdsa.subject,
                "the ECDSA-disabling COP is installed although tomcat-ECDSA is CA-signed with "
                "an EC key: it is never offered", RSA_ONLY.name,
                f"{RSA_ONLY.name} (action = rollback), or keep RSA-only on purpose",
                ecdsa.serial)
        elif (node.ecdsa_cop == "rollback" and node.ecdsa_in_use and ecdsa.self_signed
              and (rsa is None or rsa.self_signed)):
            yield s.finding(
                Severity.MEDIUM, Code.ROLLBACK_COP_SELF_SIGNED, node.node, ECDSA_UNIT,
                ecdsa.subject, "the rollback COP offers tomcat-ECDSA again but it is "
                "self-signed: agents are asked to accept another certificate", CA_SIGNED.name,
                f"{CA_SIGNED.name}; or {RSA_ONLY.name} (action = disable) again", ecdsa.serial)


#: findings that already report why a node's tomcat-ECDSA troubles agents
_ECDSA_CAUSES = (Code.ECDSA_SELF_SIGNED, Code.RSA_SIGNED_ECDSA, Code.ROLLBACK_COP_SELF_SIGNED,
                 Code.PORT_MISMATCH)


def _agents(s: _Site, reported: set[str]) -> Iterator[Finding]:
    """One finding per site: the gadgets and ports where agents' browsers are shown a
    self-signed or RSA-signed tomcat-ECDSA today (Cisco 210528: Live Data, chat and email),
    on the nodes no other finding already explains (``reported``)."""
    where: dict[str, list[PortRow]] = defaultdict(list)
    for p in s.inv.ports:
        problem = (topology.browser_problem(p.key_type.split(" ")[0], bool(p.self_signed),
                                            p.signed_with)
                   if p.client == "browser" and p.status == "ok" else None)
        if problem and p.node not in reported:
            where[problem].append(p)
    for problem, ps in sorted(where.items()):
        gadgets = ", ".join(dict.fromkeys(p.serves or str(p.port) for p in ps))
        ports = ", ".join(f"{p.node} {p.port} ({p.serves or p.service})" for p in ps)
        rsa = "RSA" in problem
        yield s.finding(
            Severity.HIGH if rsa else Severity.MEDIUM, Code.AGENTS_PROMPTED, "", ECDSA_UNIT,
            gadgets, f"agents' browsers are shown {problem} on {ports}: "
            + ("it should not be presented (CSCvb58580)" if rsa else
               "agents are asked to accept it (a browser trusting CA-signed RSA certificates "
               "blocks it)"), PREFLIGHT.name,
            f"push the self-signed certificates to agent PCs ({SELF_SIGNED.name}), have "
            f"tomcat-ECDSA CA-signed with an EC key ({CA_SIGNED.name}), or stop offering it "
            f"({RSA_ONLY.name}); {PREFLIGHT.name} advises which",
            " ".join(sorted({p.node for p in ps})))


def _csrs(s: _Site, policy: Policy, csrs: Iterable[CsrRow]) -> Iterator[Finding]:
    for c in csrs:
        if c.age_days > policy.csr_days:
            ecdsa = c.unit == ECDSA_UNIT
            yield s.finding(
                Severity.LOW, Code.OLD_CSR, c.node, c.unit, c.subject,
                f"a {c.unit} CSR has been pending for {c.age_days} days (first seen "
                f"{c.first_seen:%Y-%m-%d})", CA_SIGNED.name if ecdsa else "",
                f"send it to the CA and run {CA_SIGNED.name} (it reuses the pending CSR)"
                if ecdsa
                else "finish or abandon the CSR in OS Administration", c.public_key_sha256)


def _errors(s: _Site) -> Iterator[Finding]:
    if s.inv.error:
        yield s.finding(Severity.HIGH, Code.NOT_INVENTORIED, "", "", s.inv.site_file,
                        s.inv.error, "", "fix the site file (cckit site check FILE)")
    for n in s.inv.nodes:
        if n.error:
            yield s.finding(
                Severity.HIGH if not n.version else Severity.LOW, Code.NOT_INVENTORIED,
                n.node, "", n.host, n.error, PREFLIGHT.name,
                f"check reachability and the credential (the {PREFLIGHT.name} runbook)")


def findings(inv: SiteInventory, policy: Policy | None = None,
             csrs: Iterable[CsrRow] | None = None) -> list[Finding]:
    """Every finding of one site; ``csrs``: its CSR rows with their ages (default: as read,
    age 0). Sorted worst first."""
    s, policy = _Site(inv), policy or Policy()
    out = [*_errors(s), *_expiry(s, policy), *_ecdsa_signing(s), *_client_auth(s),
           *_trust_gaps(s), *_ports(s)]
    reported = {(f.node, f.unit) for f in out
                if f.code in (Code.ECDSA_SELF_SIGNED, Code.RSA_SIGNED_ECDSA)}
    out += [*_cops(s, reported), *_csrs(s, policy, inv.csrs if csrs is None else csrs)]
    explained = {f.node for f in out if f.unit == ECDSA_UNIT and f.code in _ECDSA_CAUSES}
    out += _agents(s, explained)
    return sorted(out, key=lambda f: (f.severity.rank, f.site, f.node, f.code.value,
                                      f.subject))
