"""An in-process VOS node for fast unit tests, like httpx's ``MockTransport``.

:class:`FakeNode` holds a node's state (certificate stores with real X.509 objects, pending
CSRs with their keys, services, version, COPs) and follows the same VOS rules the mock
follows: a new CSR replaces the pending one and its key; an own certificate is imported
only for the pending CSR's key and with its issuer in tomcat-trust; trust uploaded on a
publisher replicates to its subscribers. It serves no TLS: steps that probe ports need the
VOS mock (``cckit.vosmock``), which the end-to-end tests use over real SSH.

    nodes = fake.site_nodes(site)                 # one FakeNode per site node
    with SiteSession(site, workdir=..., connect=fake.connector(nodes)) as s: ...
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .. import certs
from .._internal import x509build
from ..credentials import Secret
from ..errors import CommandError
from ..sites import CopRepository, Node, Site
from ..topology import ECDSA_UNIT, RSA_UNIT, TOMCAT
from .base import StoredCert, Transport, VersionInfo

__all__ = ["FakeNode", "FakeTransport", "connector", "site_nodes"]


def _self_signed(cn: str, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
                 ) -> x509.Certificate:
    """What a node generates at install: self-signed, 5 years, its name as SAN."""
    now = dt.datetime.now(dt.UTC)
    subject = x509build.name(cn)
    return x509build.leaf_certificate(
        subject, key.public_key(), issuer=(key, subject), eku=None,
        sans=x509.SubjectAlternativeName([x509.DNSName(cn)]),
        not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=5 * 365))


@dataclass
class FakeNode:
    """The state of one simulated node; ``journal`` lists every operation it received."""

    node: Node
    version: str = "11.5.1.10000-61"
    cops: list[str] = field(default_factory=list)
    own: dict[str, x509.Certificate] = field(default_factory=dict)
    trust: dict[str, x509.Certificate] = field(default_factory=dict)
    pending: dict[str, tuple[object, x509.CertificateSigningRequest]] = field(
        default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)
    journal: list[str] = field(default_factory=list)
    replicas: list[FakeNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        host = self.node.fqdn
        short, _, domain = host.partition(".")
        if not self.own:
            self.own[RSA_UNIT] = _self_signed(host, rsa.generate_private_key(65537, 2048))
            self.own[ECDSA_UNIT] = _self_signed(f"{short}-EC.{domain}".rstrip("."),
                                                ec.generate_private_key(ec.SECP384R1()))
        for cert in self.own.values():
            self.add_trust(cert)
        self.services = self.services or {s: "STARTED"
                                          for svc in self.node.spec.web_services
                                          for s in (svc.name,)}

    def add_trust(self, cert: x509.Certificate) -> str:
        info = certs.describe(cert)
        name = f"tomcat-trust/{info.subject_cn.replace(' ', '_')}_{info.serial_hex}.pem"
        self.trust[name] = cert
        return name


def site_nodes(site: Site, **state: object) -> dict[str, FakeNode]:
    """A FakeNode per node of ``site``; trust replicates from each publisher to the
    subscribers of its product, as on the real cluster."""
    nodes = {n.name: FakeNode(n, **state) for n in site.nodes}  # type: ignore[arg-type]
    for n in site.nodes:
        if n.spec.publisher:
            nodes[n.name].replicas = [nodes[m.name] for m in site.nodes if m is not n
                                      and not m.spec.publisher and not m.spec.trust_target
                                      and m.spec.product is n.spec.product]
    return nodes


class FakeTransport(Transport):
    """Every capability, in memory, over one :class:`FakeNode`."""

    commands: ClassVar[Mapping[str, str]] = {"generate_csr": "fake: generate a CSR for {unit}",
                                             "restart": "fake: restart {service}"}

    def __init__(self, state: FakeNode) -> None:
        self.state = state
        self.node = state.node
        self.closed = False

    def _log(self, what: str) -> None:
        self.state.journal.append(what)

    def close(self) -> None:
        self.closed = True

    # -- Packages
    def version(self) -> VersionInfo:
        self._log("version")
        return VersionInfo(self.state.version, tuple(self.state.cops))

    def install_cop(self, file: str, repository: CopRepository, username: str,
                    password: Secret, *, timeout: float = 900) -> bool:
        self._log(f"install_cop {file}")
        if file in self.state.cops:
            return False
        self.state.cops.append(file)
        return True

    # -- CertStore
    def list_certificates(self, store: str = "own") -> list[StoredCert]:
        self._log(f"list {store}")
        items = (((f"{u}/{u}.pem", c) for u, c in self.state.own.items()) if store == "own"
                 else self.state.trust.items())
        out = []
        for file, cert in items:
            info = certs.describe(cert)
            desc = ("Self-signed certificate generated by system" if info.self_signed
                    else f"Certificate Signed by {info.issuer_cn}")
            out.append(StoredCert(store, file, desc, file.split("/")[0], cert))
        return out

    def get_certificate(self, store: str, file: str) -> x509.Certificate:
        self._log(f"show {store} {file}")
        table = ({f"{u}/{u}.pem": c for u, c in self.state.own.items()} if store == "own"
                 else self.state.trust)
        if file not in table:
            raise CommandError(f"no certificate {file}", node=self.node.name, file=file)
        return table[file]

    def pending_csr(self, unit: str = ECDSA_UNIT) -> x509.CertificateSigningRequest | None:
        self._log(f"show csr {unit}")
        return self.state.pending[unit][1] if unit in self.state.pending else None

    def generate_csr(self, unit: str = ECDSA_UNIT, *, key_size: int | None = None,
                     hash_algorithm: str | None = None) -> x509.CertificateSigningRequest:
        self._log(f"generate_csr {unit}")
        current = certs.describe(self.state.own[unit])
        key = (ec.generate_private_key(ec.SECP384R1()) if unit == ECDSA_UNIT
               else rsa.generate_private_key(65537, 2048))
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                           current.subject_cn)]))
               .add_extension(x509.SubjectAlternativeName(
                   [x509.DNSName(n.removeprefix("DNS:")) for n in current.sans]),
                   critical=False)
               .sign(key, hashes.SHA384()))
        self.state.pending[unit] = (key, csr)  # replaces the pending CSR and its key
        return csr

    def upload_trust(self, cert: x509.Certificate) -> str:
        self._log("upload_trust")
        reasons = certs.check_trust_certificate(cert)
        if reasons:
            raise CommandError(reasons[0], node=self.node.name, unit="tomcat-trust")
        name = self.state.add_trust(cert)
        for replica in self.state.replicas:
            replica.add_trust(cert)
        return name

    def upload_identity(self, unit: str, cert: x509.Certificate, ca_file: str) -> None:
        self._log(f"upload_identity {unit}")
        pending = self.state.pending.get(unit)
        if pending is None or certs.public_key_sha256(pending[1]) != \
                certs.public_key_sha256(cert):
            raise CommandError("the certificate does not match the pending CSR",
                               node=self.node.name, unit=unit)
        if ca_file not in self.state.trust:
            raise CommandError(f"{ca_file} is not in tomcat-trust", node=self.node.name,
                               unit=unit)
        self.state.own[unit] = cert
        del self.state.pending[unit]

    # -- Services, System
    def restart_service(self, name: str = TOMCAT, *, timeout: float = 600) -> None:
        self._log(f"restart {name}")
        if name not in self.state.services:
            raise CommandError(f"Service not found: {name}", node=self.node.name)
        self.state.services[name] = "STARTED"

    def service_status(self) -> dict[str, str]:
        self._log("service_status")
        return dict(self.state.services)

    def reboot(self, *, timeout: float = 900) -> None:
        self._log("reboot")


def connector(nodes: Mapping[str, FakeNode]) -> Callable[[Site, Node], Transport]:
    """What :class:`~cckit.session.SiteSession` calls to open a node's transport."""
    def connect(site: Site, node: Node) -> Transport:
        return FakeTransport(nodes[node.name])

    return connect
