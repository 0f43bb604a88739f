"""The fleet inventory as data: small frozen records, one per certificate, node, port, CSR and
finding. They hold strings, numbers and datetimes only (no key material, no x509 objects), so
they pickle to and from Dask workers; :mod:`cckit.display` turns them into tables.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from ..results import col

__all__ = [
    "CertRow",
    "Code",
    "CsrRow",
    "Finding",
    "NodeRow",
    "PortRow",
    "Severity",
    "SiteInventory",
    "TrustGap",
]


class Severity(enum.StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for critical ... 3 for low (sorts the worst first)."""
        return list(Severity).index(self)


class Code(enum.StrEnum):
    """What a finding is about; its value is the short id used in metrics and alerts."""

    EXPIRED = "expired"
    EXPIRING = "expiring"
    ECDSA_SELF_SIGNED = "ecdsa-self-signed"
    RSA_SIGNED_ECDSA = "rsa-signed-ecdsa"
    NO_CLIENT_AUTH = "no-client-auth"
    TRUST_MISSING_CA = "trust-missing-ca"
    PORT_MISMATCH = "port-mismatch"
    DISABLE_COP_CA_SIGNED = "disable-cop-ca-signed"
    ROLLBACK_COP_SELF_SIGNED = "rollback-cop-self-signed"
    OLD_CSR = "old-csr"
    AGENTS_PROMPTED = "agents-prompted"
    NOT_INVENTORIED = "not-inventoried"


@dataclass(frozen=True)
class CertRow:
    """One certificate in one node's own or trust store."""

    site: str = col("site")
    node: str = col("node")
    role: str = col("role")
    store: str = col("store")  # own | trust
    unit: str = col("unit")  # tomcat, tomcat-ECDSA, tomcat-trust, ...
    file: str = col("file")
    subject: str = col("subject CN")
    sans: tuple[str, ...] = col("SANs")
    issuer: str = col("issuer CN")
    serial: str = col("serial")
    key_type: str = col("key")
    key_detail: str = col("curve / bits")
    key_bits: int = col("key bits")
    signature_algorithm: str = col("signature")
    signed_with: str = col("signed with")
    not_before: dt.datetime = col("not before")
    not_after: dt.datetime = col("not after")
    days_left: int = col("days left")
    #: the EKU allows it (None: no EKU extension, any use)
    server_auth: bool | None = col("serverAuth")
    client_auth: bool | None = col("clientAuth")
    self_signed: bool = col("self-signed")
    is_ca: bool = col("CA")
    #: against the node's tomcat-trust: "self-signed", "complete", "incomplete: <CN> missing"
    #: or "does not verify: <reason>"
    chain: str = col("chain")
    sha256: str = col("sha256")
    #: where it is presented, e.g. "8443 ecdsa" (own certificates)
    presented: tuple[str, ...] = col("presented on", default=())


@dataclass(frozen=True)
class NodeRow:
    site: str = col("site")
    node: str = col("node")
    role: str = col("role")
    host: str = col("host")
    version: str = col("version")
    ecdsa_in_use: bool | None = col("ECDSA used")
    cops: tuple[str, ...] = col("installed COPs")
    #: the ECDSA COP in effect by the installed list: "disable", "rollback" or ""
    ecdsa_cop: str = col("ECDSA COP")
    pending_csrs: tuple[str, ...] = col("pending CSRs")
    certificates: int = col("certificates")
    error: str = col("error", default="")


@dataclass(frozen=True)
class PortRow:
    """What one web port presented to one kind of TLS 1.2 client."""

    site: str = col("site")
    node: str = col("node")
    port: int = col("port")
    service: str = col("service")
    client: str = col("client")  # browser | ecdsa | rsa
    status: str = col("status")
    subject: str = col("subject CN", default="")
    issuer: str = col("issuer CN", default="")
    key_type: str = col("key", default="")
    self_signed: bool | None = col("self-signed", default=None)
    sha256: str = col("sha256", default="")
    #: the key type the issuer signed it with (EC, RSA)
    signed_with: str = col("signed with", default="")
    #: what agents reach on the port (``Live Data``; topology)
    serves: str = col("serves", default="")


@dataclass(frozen=True)
class CsrRow:
    site: str = col("site")
    node: str = col("node")
    unit: str = col("unit")
    subject: str = col("subject CN")
    key: str = col("key")
    public_key_sha256: str = col("public key sha256")
    #: when a sweep first saw it (VOS shows no date for a CSR); set by the sweep
    first_seen: dt.datetime | None = col("first seen", default=None)
    age_days: int = col("days pending", default=0)


@dataclass(frozen=True)
class TrustGap:
    """``node``'s tomcat-trust cannot complete the chain of an identity of the site."""

    site: str
    node: str
    identity_node: str
    unit: str
    subject: str
    missing: str  # the CN (or DN) of the CA certificate not found


@dataclass(frozen=True)
class Finding:
    severity: Severity = col("severity")
    code: Code = col("finding")
    site: str = col("site")
    node: str = col("node")
    unit: str = col("unit")
    subject: str = col("about")
    message: str = col("what")
    #: the cckit runbook that fixes it ("" where none does: ``fix`` says what to do)
    runbook: str = col("runbook")
    fix: str = col("fix")
    #: what identifies the object across sweeps (a serial, a public-key hash, a port)
    ident: str = field(default="", metadata={"label": "id"})

    @property
    def key(self) -> str:
        """The same finding in two sweeps has the same key; a worse severity is a new one."""
        return "|".join((self.site, self.node, self.code.value, self.unit,
                         self.ident or self.subject, self.severity.value))


@dataclass(frozen=True)
class SiteInventory:
    """What one sweep read from one site (collected where the work runs, Dask included)."""

    site: str
    site_file: str
    seconds: float = 0.0
    nodes: tuple[NodeRow, ...] = ()
    certs: tuple[CertRow, ...] = ()
    ports: tuple[PortRow, ...] = ()
    csrs: tuple[CsrRow, ...] = ()
    gaps: tuple[TrustGap, ...] = ()
    #: the site could not be read at all (invalid site file)
    error: str = ""
