"""One simulated VOS node: certificate stores, services, SSH server and Tomcat TLS listeners."""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

from . import finesse, pki
from .store import atomic_write, contained, read_json, write_json

if TYPE_CHECKING:  # pragma: no cover
    from .site import MockSite

log = logging.getLogger("cckit.vosmock")

COP_HEADER = b"VOSMOCK-COP/1"
TLS_CERT_TYPE_MIN_VERSION = (11, 6)  # [assumed] first version with `set tls server cert_type`
# [doc] Cisco's certificate management REST API (certmgr) exists on VOS 14+ of CUCM, IM&P,
# Unity Connection and CER only (DESIGN.md, from working public code); UCCX and SocialMiner
# have none at any release, so their nodes get no REST listener (of those products the mock
# plays CUCM).
REST_MIN_VERSION = (14,)
REST_PRODUCTS = ("cucm",)
# [doc] Cisco 118855: ECDSA is no longer used by UCCX/SocialMiner from 11.6 on, so such a node
# has no tomcat-ECDSA unit (mirrors cckit.topology.ecdsa_in_use; the mock imports no cckit).
# CUCM keeps tomcat-ECDSA [doc: CUCM 11.5+ security guide].
NO_ECDSA_FROM = {"uccx": (11, 6), "socialminer": (11, 6)}
# [doc] a multi-server SAN tomcat CSR on UCCX from 11.6(2) (issue 14; CUCM from 10.5, Cisco
# 118731); [assumed] the CLI form `set csr gen multi-server tomcat` (OS Admin: Distribution
# "Multi-server (SAN)").
MULTI_SAN_MIN_VERSION = (11, 6, 2)

Emit = Callable[[str], Awaitable[None]]


class CommandError(Exception):
    """A refused command; `lines` are printed before `Executed command unsuccessfully`."""

    def __init__(self, *lines: str):
        super().__init__(" ".join(lines))
        self.lines = list(lines)


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version))


@dataclass
class NodeSpec:
    name: str
    role: str
    short: str  # host name without domain
    #: the node's real TLS ports each mock listener stands for (Cisco port guides)
    web: tuple[int, ...]

    @property
    def n_web_ports(self) -> int:
        return len(self.web)


# [doc] `utils service list` of a UCCX-family node: Cisco VVB 12.6 Operations Guide, "Command
# Line Interface" (platform services; VVB is built on the UCCX platform) and the UCCX service
# names; [assumed] the SocialMiner ones. System services come first, with a space before "[".
TOMCAT = "Cisco Tomcat"
# Which service's web server answers each real port, so a restart reloads only its own
# listeners [doc: UCCX 11.5 port utilization guide (8445 Finesse, 8444 CUIC, 7443 the
# Notification Service, 12015 Socket.IO; SocialMiner 443 and its Openfire on 7443); Cisco
# 210528/118855 list Finesse, Socket.IO, Openfire and the platform Tomcat as separate web
# services]. Ports not listed are the platform Tomcat's.
WEB_SERVICE_OF_PORT = {
    "uccx": {
        8445: "Cisco Finesse Tomcat",
        8444: "Cisco Unified Intelligence Center Reporting Service",
        7443: "Cisco Unified CCX Notification Service",
        12015: "Cisco Unified CCX Socket.IO Service",
    },
    "socialminer": {7443: "Cisco SocialMiner Notification Service"},
}
# What a client offering both RSA and ECDSA (a browser) is shown [doc: Cisco 210528, per web
# server instance]: tomcat-ECDSA by these services, while it is offered -- "ec" only when no
# CA signed it with RSA (Socket.IO falls back to RSA), "any" even then (SocialMiner's Openfire,
# CSCvb58580) -- and the RSA tomcat by every other UCCX/SocialMiner web server. Mirrors
# cckit.topology (WebService.to_browser), tested to agree.
BROWSER_ECDSA = {
    "Cisco Unified CCX Socket.IO Service": "ec",
    "Cisco SocialMiner Notification Service": "any",
}
# [doc] Cisco 201000 (TLS support with UCCX): as a server, Unified CCX 11.x speaks TLS 1.0,
# 1.1 and 1.2 -- no 1.3 (Java web servers of that era). So the server's cipher suite
# preference (ECDHE-ECDSA or ECDHE-RSA) is what picks the certificate for a client offering
# both; the mock keeps TLS 1.2 as its floor [assumed: 1.0/1.1 are off in modern OpenSSL].
# CUCM keeps TLS 1.3 and the client's preference [assumed: no Cisco table for CUCM].
TLS12_PRODUCTS = ("uccx", "socialminer")
PREFER_RSA = "aRSA:aECDSA:!aNULL:!eNULL"
PREFER_ECDSA = "aECDSA:aRSA:!aNULL:!eNULL"

SYSTEM_SERVICES = ["System NTP", "System SSH"]
PLATFORM_SERVICES = [
    "A Cisco DB",
    "A Cisco DB Replicator",
    "Cisco AMC Service",
    "Cisco Audit Event Service",
    "Cisco CDP",
    "Cisco CDP Agent",
    "Cisco Certificate Change Notification",
    "Cisco Certificate Expiry Monitor",
    "Cisco DRF Local",
    "Cisco DRF Master",
    "Cisco Log Partition Monitoring Tool",
    "Cisco RIS Data Collector",
    "Cisco RTMT Reporter Servlet",
    "Cisco Syslog Agent",
    "Cisco Tomcat",
    "Cisco Tomcat Stats Servlet",
    "Cisco Trace Collection Service",
    "Cisco Trace Collection Servlet",
    "Cisco Unified Serviceability RTMT",
    "Host Resources Agent",
    "MIB2 Agent",
    "Platform Administrative Web Service",
    "Platform Communication Web Service",
    "SNMP Master Agent",
    "SOAP -Log Collection APIs",
    "SOAP -Performance Monitoring APIs",
    "SOAP -Real-Time Service APIs",
    "System Application Agent",
]
NOT_ACTIVATED = ["Cisco DirSync", "Cisco Serviceability Reporter"]
UCCX_SERVICES = [
    "Cisco Finesse Tomcat",
    "Cisco Identity Service",
    "Cisco Unified CCX Administration",
    "Cisco Unified CCX Cluster View Daemon",
    "Cisco Unified CCX DB Perfmon Counter Service",
    "Cisco Unified CCX Database",
    "Cisco Unified CCX Engine",
    "Cisco Unified CCX Notification Service",
    "Cisco Unified CCX Perfmon Counter Service",
    "Cisco Unified CCX SNMP Java Adapter",
    "Cisco Unified CCX Serviceability",
    "Cisco Unified CCX Socket.IO Service",
    "Cisco Unified CCX Voice Subagent",
    "Cisco Unified Intelligence Center Reporting Service",
]
SOCIALMINER_SERVICES = ["Cisco SocialMiner Notification Service", "Cisco SocialMiner Runtime"]
SERVICES = {
    "uccx": [*SYSTEM_SERVICES, *sorted([*PLATFORM_SERVICES, *UCCX_SERVICES])],
    # [doc] CUCM 11.5 serviceability: the platform web server is Cisco Tomcat
    "cucm": [*SYSTEM_SERVICES, *sorted([*PLATFORM_SERVICES, "Cisco CallManager",
                                        "Cisco CTIManager",
                                        "Cisco Certificate Change Notification"])],
    "socialminer": [*SYSTEM_SERVICES, *sorted([*PLATFORM_SERVICES, *SOCIALMINER_SERVICES])],
}

# the COP wizard as each kind of node asks it (README: "COP wizard variants")
WIZARDS = (
    "11.5",
    "12.5-publisher",
    "12.5-subscriber",
    "open-session",
    "remembered-defaults",
    "slow-download",
    "unknown-question",
)


async def listen_or_move(make, port: int, move):
    """`await make(port)`; while the port is taken, `move(port)` gives another (None: fail)."""
    while True:
        try:
            return await make(port)
        except OSError as exc:
            if move is None or exc.errno != errno.EADDRINUSE:
                raise
            port = move(port)


class MockNode:
    def __init__(self, site: MockSite, spec: NodeSpec, root: Path, version: str | None):
        self.site = site
        self.spec = spec
        self.name = spec.name
        self.role = spec.role
        self.product = spec.role.split("-")[0]  # uccx | socialminer | cucm
        self.host = f"{spec.short}.{site.domain}"
        self.root = Path(root)
        self.ssh_port = 0
        self.web_ports: list[int] = []
        self.rest_port: int | None = None
        self.services = {s: "STARTED" for s in SERVICES[self.product]}
        self._ssh_acceptor = None
        self._ssh_conns: set = set()
        self._tomcat_servers: list[asyncio.AbstractServer] = []  # the platform Tomcat's
        self._service_servers: dict[str, list[asyncio.AbstractServer]] = {}  # the others'
        # what each other web service presents since its last restart: ECDSA offered or not
        self.service_ecdsa: dict[str, bool] = {}
        self._tomcat_protos: set = set()
        self._rest_runner = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._failures = 0
        self._locked_until = 0.0
        self.running = False  # SSH/TLS should be up (False while rebooting or down)
        self.keyboard_interactive = False  # SSH offers keyboard-interactive auth only
        self.upgrade_open = False  # an upgrade session left open (the wizard asks to take over)
        self.remembered: dict[str, str] = {}  # what the wizard offers as defaults (12.5+)
        # Finesse (UCCX): in service from this monotonic time on (finesse.py); its own
        # count of bad SystemInfo credentials
        self.finesse_ready_at = 0.0
        self.finesse_failures = 0
        self.finesse_locked_until = 0.0
        self._load_or_init(version)
        self.wizard = self.default_wizard()

    def default_wizard(self) -> str:
        if version_tuple(self.version) >= (12, 5):
            return "12.5-subscriber" if self.role == "uccx-subscriber" else "12.5-publisher"
        return "11.5"

    def set_wizard(self, variant: str) -> None:
        if variant not in WIZARDS:
            raise ValueError(f"unknown wizard variant {variant!r}; one of {', '.join(WIZARDS)}")
        self.wizard = variant
        self.upgrade_open = variant == "open-session"
        if variant == "remembered-defaults":  # values someone typed last time, not ours
            self.remembered = {
                "directory": "/patches/old",
                "server": "sftp-old.example.net",
                "user": "patchuser",
                "smtp": "",
            }

    @property
    def failed_text(self) -> str:
        """[doc] `Executed command unsuccessfully`; the 12.5 CLI reference prints it with a
        period (unset network cluster subscriber details)."""
        period = "." if version_tuple(self.version) >= (12,) else ""
        return f"Executed command unsuccessfully{period}"

    def service_list(self) -> list[str]:
        """`utils service list`, laid out as on a real node (see SERVICES)."""
        lines = ["Requesting service status, please wait..."]
        lines += [f"{s} [{self.services[s]}]" for s in SYSTEM_SERVICES]
        lines += ["Service Manager is running", "Getting list of all services"]
        lines.append(">> Return code = 0")
        lines += [f"{s}[{st}]" for s, st in self.services.items() if s not in SYSTEM_SERVICES]
        lines += [f"{s}[STOPPED]  Service Not Activated" for s in NOT_ACTIVATED]
        if self.product == "uccx":
            lines.append(f"Primary Node ={str(self.role == 'uccx-publisher').lower()}")
        lines.append("Command successful")
        return lines

    # ------------------------------------------------------------------ state
    @property
    def tomcat_state(self) -> str:
        return self.services["Cisco Tomcat"]

    @tomcat_state.setter
    def tomcat_state(self, value: str) -> None:
        self.services["Cisco Tomcat"] = value

    def path(self, *parts: str) -> Path:
        return contained(self.root, *parts)

    def _load_or_init(self, version: str | None) -> None:
        meta = read_json(self.path("node.json"))
        self.root.mkdir(parents=True, exist_ok=True)
        hk = self.path("ssh_host_ed25519_key")
        if hk.exists():
            self.host_key = asyncssh.import_private_key(hk.read_bytes())
        else:
            self.host_key = asyncssh.generate_private_key("ssh-ed25519")
            atomic_write(hk, self.host_key.export_private_key(), mode=0o600)
        if meta is None:
            self.version = version or "11.5.1.10000-61"
            self.cops: list[str] = []
            self.ecdsa_disabled = {"stored": False, "active": False}
            # [assumed] a node without tomcat-ECDSA (UCCX/SocialMiner 11.6+) serves RSA
            kind = "ecdsa" if "tomcat-ECDSA" in self.units else "rsa"
            self.tls_cert_type = {"stored": kind, "active": kind}
            self.include_ou_prompt = False
            for unit in self.units:
                self._regen(unit)
            self._activate()
            self.save()
        else:
            self.version = version or meta["version"]
            self.cops = list(meta["cops"])
            self.ecdsa_disabled = dict(meta["ecdsa_disabled"])
            self.tls_cert_type = dict(meta["tls_cert_type"])
            self.include_ou_prompt = bool(meta.get("include_ou_prompt", False))
            self.service_ecdsa = dict(meta.get("service_ecdsa") or {})
            if version and version != meta["version"]:
                self.save()

    def save(self) -> None:
        write_json(
            self.path("node.json"),
            {
                "name": self.name,
                "role": self.role,
                "host": self.host,
                "version": self.version,
                "cops": self.cops,
                "ecdsa_disabled": self.ecdsa_disabled,
                "tls_cert_type": self.tls_cert_type,
                "include_ou_prompt": self.include_ou_prompt,
                "service_ecdsa": self.service_ecdsa,
            },
        )

    # own identities (stored = imported; active = presented by the listeners)
    def own_cert(self, unit: str):
        return pki.load_cert(self.path("own", unit, f"{unit}.pem").read_bytes())

    def own_key_pem(self, unit: str) -> bytes:
        return self.path("own", unit, f"{unit}.key").read_bytes()

    def active_cert(self, unit: str):
        return pki.load_cert(self.path("active", unit, f"{unit}.pem").read_bytes())

    def _store_own(self, unit: str, cert_pem: bytes, key_pem: bytes) -> None:
        atomic_write(self.path("own", unit, f"{unit}.key"), key_pem, mode=0o600)
        atomic_write(self.path("own", unit, f"{unit}.pem"), cert_pem)

    def csr(self, unit: str) -> tuple[bytes, bytes] | None:
        p = self.path("csr", unit, f"{unit}.csr")
        if not p.exists():
            return None
        return p.read_bytes(), self.path("csr", unit, f"{unit}.key").read_bytes()

    def csr_units(self) -> list[str]:
        return [u for u in self.units if self.path("csr", u, f"{u}.csr").exists()]

    @property
    def units(self) -> tuple[str, ...]:
        """The own-certificate units this node has (no tomcat-ECDSA on UCCX/SM 11.6+)."""
        since = NO_ECDSA_FROM.get(self.product)
        if since is not None and version_tuple(self.version)[:2] >= since:
            return ("tomcat",)
        return pki.UNITS

    def unit(self, text: str) -> str | None:
        """``text`` as one of this node's units (case-insensitive), or None."""
        unit = pki.canonical_unit(text)
        return unit if unit in self.units else None

    def trust(self) -> dict[str, bytes]:
        d = self.path("trust", "tomcat-trust")
        if not d.is_dir():
            return {}
        return {p.name: p.read_bytes() for p in sorted(d.glob("*.pem"))}

    def trust_certs(self):
        return [pki.load_cert(pem) for pem in self.trust().values()]

    def _add_trust(self, cert) -> str:
        for fname, pem in self.trust().items():
            if pki.load_cert(pem) == cert:
                return fname
        fname = pki.trust_filename(cert)
        atomic_write(self.path("trust", "tomcat-trust", fname), pki.cert_pem(cert))
        return fname

    def _delete_trust(self, fname: str) -> bool:
        if fname not in self.trust():  # only names we listed ourselves, never user paths
            return False
        self.path("trust", "tomcat-trust", fname).unlink()
        return True

    def _regen(self, unit: str) -> None:
        """A fresh self-signed identity for `unit` (first boot and `set cert regen`)."""
        old = None
        if self.path("own", unit, f"{unit}.pem").exists():
            old = self.own_cert(unit)
        key = pki.new_key(unit)
        sans = [self.host]
        if unit == "tomcat-ECDSA":
            cn = f"{self.spec.short}-EC.{self.site.domain}"
            sans.append(cn)
        else:
            cn = self.host
        cert = pki.self_signed(key, pki.subject_name(cn, self.product.upper(), self.site.org), sans)
        self._store_own(unit, pki.cert_pem(cert), pki.key_pem(key))
        if old is not None and pki.is_self_signed(old):
            for fname, pem in self.trust().items():
                if pki.load_cert(pem) == old:
                    self._delete_trust(fname)
        self._add_trust(cert)

    def _chain_pem(self, cert) -> bytes:
        chain = [pki.cert_pem(cert)]
        trust = self.trust_certs()
        cur = cert
        for _ in range(8):
            if cur.issuer == cur.subject:
                break
            issuer = next((t for t in trust if pki.signed_by(cur, t)), None)
            if issuer is None or issuer.issuer == issuer.subject:
                break
            chain.append(pki.cert_pem(issuer))
            cur = issuer
        return b"".join(chain)

    def web_service(self, index: int) -> str:
        """The service whose web server answers web listener ``index``."""
        return WEB_SERVICE_OF_PORT.get(self.product, {}).get(self.spec.web[index], TOMCAT)

    @property
    def web_services(self) -> list[str]:
        return list(dict.fromkeys(self.web_service(i) for i in range(len(self.spec.web))))

    def _active_dir(self, service: str) -> tuple[str, ...]:
        if service == TOMCAT:
            return ("active",)
        return ("active-services", re.sub(r"[^a-z0-9]+", "-", service.lower()).strip("-"))

    def _activate(self, services: list[str] | None = None) -> None:
        """What a restart does: the stored state becomes the active one of the restarted
        services (a system restart: all of them)."""
        offered = ("tomcat-ECDSA" in self.units and not self.ecdsa_disabled["stored"]
                   and self.tls_cert_type["stored"] != "rsa")
        for service in services or [TOMCAT, *self.web_services]:
            where = self._active_dir(service)
            for unit in self.units:
                cert = self.own_cert(unit)
                atomic_write(self.path(*where, unit, f"{unit}.key"), self.own_key_pem(unit),
                             0o600)
                atomic_write(self.path(*where, unit, f"{unit}.pem"), self._chain_pem(cert))
            if service == TOMCAT:
                self.ecdsa_disabled["active"] = self.ecdsa_disabled["stored"]
                self.tls_cert_type["active"] = self.tls_cert_type["stored"]
            else:
                self.service_ecdsa[service] = offered
        self.save()

    @property
    def ecdsa_offered(self) -> bool:
        return ("tomcat-ECDSA" in self.units and not self.ecdsa_disabled["active"]
                and self.tls_cert_type["active"] != "rsa")

    @property
    def has_tls_cert_type(self) -> bool:
        return version_tuple(self.version) >= TLS_CERT_TYPE_MIN_VERSION

    @property
    def has_rest(self) -> bool:
        return (self.product in REST_PRODUCTS
                and version_tuple(self.version) >= REST_MIN_VERSION)

    # ------------------------------------------------------------------ auth
    def check_password(self, username: str, password: str) -> bool:
        now = time.monotonic()
        if now < self._locked_until:
            log.info("%s: account %s locked", self.name, username)
            return False
        ok = hmac.compare_digest(username.encode(), self.site.username.encode()) and (
            hmac.compare_digest(password.encode(), self.site.password.encode())
        )
        if ok:
            self._failures = 0
            return True
        self._failures += 1
        if self._failures >= self.site.lockout_failures:
            self._failures = 0
            self._locked_until = now + self.site.lockout_seconds
            log.info(
                "%s: account %s locked for %ss", self.name, username, self.site.lockout_seconds
            )
        return False

    @property
    def locked(self) -> bool:
        return time.monotonic() < self._locked_until

    # ------------------------------------------------------------------ operations
    @property
    def has_multi_san(self) -> bool:
        return (self.product in ("uccx", "cucm")
                and version_tuple(self.version)[:3] >= MULTI_SAN_MIN_VERSION)

    def cluster(self) -> list[MockNode]:
        """This node's cluster: the publisher and subscriber(s) of its product."""
        return [n for n in self.site.nodes.values()
                if n.role.split("-")[0] == self.role.split("-")[0]
                and n.role.endswith(("-publisher", "-subscriber"))]

    async def gen_multi_csr(self, include_ou: bool) -> None:
        """One tomcat CSR for every node of the cluster: CN this node, SANs every node's
        FQDN; the CSR and its key go to every cluster node, so the signed certificate can be
        uploaded on any of them [doc: Cisco 118731; Unity Connection 10.5 SAN training: "CSR
        can be generated on any server and corresponding Certificate uploaded from any other
        server in the cluster"]."""
        unit = "tomcat"
        size = pki.key_size(pki.load_key(self.own_key_pem(unit)))
        key = await asyncio.to_thread(pki.new_key, unit, size)
        sans = [self.host] + [n.host for n in self.cluster() if n is not self]
        name = pki.subject_name(self.host, self.product.upper() if include_ou else None,
                                self.site.org)
        csr = pki.make_csr(key, name, sans)
        for node in self.cluster():
            atomic_write(node.path("csr", unit, f"{unit}.key"), pki.key_pem(key), mode=0o600)
            atomic_write(node.path("csr", unit, f"{unit}.csr"), pki.csr_pem(csr))
            atomic_write(node.path("csr", unit, "multi-server"), self.name.encode())

    async def gen_csr(self, unit: str, include_ou: bool) -> None:
        self.path("csr", unit, "multi-server").unlink(missing_ok=True)
        cur = self.own_cert(unit)
        size = pki.key_size(pki.load_key(self.own_key_pem(unit)))
        key = await asyncio.to_thread(pki.new_key, unit, size)
        cn = pki.cn_of(cur.subject)
        sans = [self.host] + ([cn] if cn != self.host else [])
        name = pki.subject_name(cn, self.product.upper() if include_ou else None, self.site.org)
        csr = pki.make_csr(key, name, sans)
        # the new CSR replaces the pending one and its private key
        atomic_write(self.path("csr", unit, f"{unit}.key"), pki.key_pem(key), mode=0o600)
        atomic_write(self.path("csr", unit, f"{unit}.csr"), pki.csr_pem(csr))

    async def regen(self, unit: str) -> None:
        await asyncio.to_thread(self._regen, unit)
        if self.role == "uccx-publisher":
            pass  # a node's own self-signed cert is only added to its own trust store

    def parse_cert(self, pem: bytes):
        certs = pki.split_pem_certs(pem)
        if len(certs) != 1:
            raise CommandError("Error: the pasted text is not a single PEM certificate.")
        try:
            return pki.load_cert(certs[0])
        except ValueError:
            raise CommandError("Error: the pasted text is not a valid PEM certificate.") from None

    def import_trust(self, cert, replicate: bool = True) -> str:
        fname = self._add_trust(cert)
        if replicate:
            self.site.replicate(self, lambda n: n._add_trust(cert))
        return fname

    def delete_trust(self, fname: str) -> None:
        if not self._delete_trust(fname):
            raise CommandError(f"Error: certificate file tomcat-trust/{fname} not found.")
        self.site.replicate(self, lambda n: n._delete_trust(fname))

    def check_own(self, unit: str, cert) -> bytes:
        """Every VOS rule for an own-cert import; returns the matching private key (PEM)."""
        want = pki.unit_key_type(unit)
        got = pki.key_type_name(cert.public_key())
        if want != got:
            raise CommandError(
                f"Error: the certificate has an {got} key; {unit} requires an {want} key."
            )
        pending = self.csr(unit)
        if pending is None:
            raise CommandError(
                f"Error: no CSR is pending for {unit}; generate one with 'set csr gen {unit}'."
            )
        key = pki.load_key(pending[1])
        if pki.pub_der(key.public_key()) != pki.pub_der(cert.public_key()):
            raise CommandError(
                f"Error: the certificate does not match the CSR pending for {unit} "
                "(its public key differs)."
            )
        if not any(pki.signed_by(cert, t) for t in self.trust_certs()):
            raise CommandError(
                f"Error: the issuer of the certificate ({cert.issuer.rfc4514_string()}) "
                "is not in tomcat-trust; import the CA certificate first "
                "with 'set cert import trust tomcat'."
            )
        return pending[1]

    def import_own(self, unit: str, cert) -> None:
        key_pem = self.check_own(unit, cert)
        multi = self.path("csr", unit, "multi-server").exists()
        # [doc] a multi-server certificate uploaded on one node is distributed to every node
        # of the cluster (Cisco 118731); each still restarts its services to present it
        for node in self.cluster() if multi else [self]:
            if node is not self and node.csr(unit) is None:
                continue
            node._store_own(unit, pki.cert_pem(cert), key_pem)
            for name in (f"{unit}.csr", f"{unit}.key", "multi-server"):
                node.path("csr", unit, name).unlink(missing_ok=True)

    def install_cop(self, fname: str, data: bytes) -> str:
        header = data.split(b"\n", 1)[0]
        if not header.startswith(COP_HEADER):
            raise CommandError(f"Error: {fname} is not a valid COP file (signature check failed).")
        fields = dict(f.split(b"=", 1) for f in header.split()[1:] if b"=" in f)
        product = fields.get(b"product", b"").decode()
        action = fields.get(b"action", b"").decode()
        if product != self.product:
            raise CommandError(f"Error: {fname} does not apply to this product.")
        if fname in self.cops:
            raise CommandError(f"Error: {fname} is already installed.")
        atomic_write(self.path("cops", pki.safe_component(fname, 200)), data)
        # [assumed] the rollback COP replaces the disable COP in the list of installed options
        # (and vice versa), so `show version active` names the one in effect
        opposite = {"ecdsa-disable": "ecdsa-rollback", "ecdsa-rollback": "ecdsa-disable"}
        if action in opposite:
            self.ecdsa_disabled["stored"] = action == "ecdsa-disable"
            self.cops = [c for c in self.cops if self.cop_action(c) != opposite[action]]
        self.cops.append(fname)
        self.save()
        return action

    def cop_action(self, fname: str) -> str:
        p = self.path("cops", pki.safe_component(fname, 200))
        if not p.exists():
            return ""
        header = p.read_bytes().split(b"\n", 1)[0]
        fields = dict(f.split(b"=", 1) for f in header.split()[1:] if b"=" in f)
        return fields.get(b"action", b"").decode()

    # ------------------------------------------------------------------ lifecycle
    async def start(self, relocate=None) -> None:
        """`relocate(node, slot, port)`: a new port for a listener whose port is taken
        (first start only; None: fail)."""
        if self.has_rest and self._rest_runner is None:
            from aiohttp import web

            from .rest import make_rest_app

            self._rest_runner = web.AppRunner(make_rest_app(self), access_log=None)
            await self._rest_runner.setup()
        self.running = True
        if not self.faults.down:
            await self._start_ssh(relocate)
            await self._start_web(relocate)

    async def _listen(self, make, port: int, slot, relocate):
        move = None if relocate is None else (lambda old: relocate(self, slot, old))
        return await listen_or_move(make, port, move)

    async def stop(self) -> None:
        self.running = False
        for t in list(self._tasks):
            t.cancel()
        await self._stop_ssh()
        await self._stop_web()
        if self._rest_runner is not None:
            await self._rest_runner.cleanup()
            self._rest_runner = None

    @property
    def faults(self):
        return self.site.faults.node(self.name)

    async def _start_ssh(self, relocate=None) -> None:
        if self._ssh_acceptor is not None:
            return
        from .session import make_ssh_server

        self._ssh_acceptor = await self._listen(
            lambda port: asyncssh.listen(
                "127.0.0.1",
                port,
                server_factory=lambda: make_ssh_server(self),
                server_host_keys=[self.host_key],
                login_timeout=30,
                line_editor=False,
                reuse_address=True,
            ),
            self.ssh_port,
            ("ssh",),
            relocate,
        )

    async def _stop_ssh(self) -> None:
        acc, self._ssh_acceptor = self._ssh_acceptor, None
        if acc is not None:
            acc.close()
            await acc.wait_closed()
        conns = list(self._ssh_conns)
        for conn in conns:
            conn.abort()
        for conn in conns:
            try:
                await asyncio.wait_for(conn.wait_closed(), 2)
            except Exception:  # noqa: S110
                pass

    def _ssl_context(self, service: str = TOMCAT) -> ssl.SSLContext:
        where = self._active_dir(service)
        if service != TOMCAT and not self.path(*where, "tomcat", "tomcat.pem").exists():
            self._activate([service])  # state from before per-service listeners
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.path(*where, "tomcat", "tomcat.pem"),
                            self.path(*where, "tomcat", "tomcat.key"))
        offered = self.ecdsa_offered if service == TOMCAT else self.service_ecdsa.get(
            service, self.ecdsa_offered)
        ecdsa = None
        if offered and "tomcat-ECDSA" in self.units:
            # a second chain of another key type: an ECDSA-only client gets this one, an
            # RSA-only client the first
            ecdsa = self.path(*where, "tomcat-ECDSA", "tomcat-ECDSA.pem")
            ctx.load_cert_chain(ecdsa, self.path(*where, "tomcat-ECDSA", "tomcat-ECDSA.key"))
        if self.product in TLS12_PRODUCTS:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            # a client offering both (a browser) gets what the server prefers (210528)
            ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
            ctx.set_ciphers(PREFER_ECDSA if ecdsa and self._browser_ecdsa(service, ecdsa)
                            else PREFER_RSA)
        return ctx

    @staticmethod
    def _browser_ecdsa(service: str, chain: Path) -> bool:
        """Whether ``service`` presents its (offered) tomcat-ECDSA in ``chain`` to a
        browser (:data:`BROWSER_ECDSA`)."""
        rule = BROWSER_ECDSA.get(service)
        if rule is None:
            return False
        return rule == "any" or not pki.signed_with_rsa(pki.load_cert(chain.read_bytes()))

    async def _start_web(self, relocate=None) -> None:
        """Every web server: the platform Tomcat's listeners and each other service's."""
        await self._start_tomcat(relocate)
        for service in self.web_services:
            if service != TOMCAT:
                await self._start_service(service, relocate)

    async def _stop_web(self) -> None:
        await self._stop_tomcat()
        for service in list(self._service_servers):
            await self._stop_service(service)

    def _track(self, factory):
        def make():
            proto = factory()
            self._tomcat_protos.add(proto)
            return proto

        return make

    async def _start_service(self, service: str, relocate=None) -> None:
        if self._service_servers.get(service) or not self.running or self.faults.down:
            return
        if self.services.get(service, "STARTED") != "STARTED":
            return
        loop = asyncio.get_running_loop()
        ctx = self._ssl_context(service)
        servers = self._service_servers.setdefault(service, [])
        for i, port in enumerate(list(self.web_ports)):
            if self.web_service(i) != service:
                continue
            servers.append(await self._listen(
                lambda p: loop.create_server(
                    self._track(lambda p=p: _WebProtocol(self, p)), "127.0.0.1", p, ssl=ctx,
                    reuse_address=True),
                port, ("web", i), relocate))

    async def _stop_service(self, service: str) -> None:
        servers = self._service_servers.pop(service, [])
        for srv in servers:
            srv.close()
        ports = {srv.sockets[0].getsockname()[1] for srv in servers if srv.sockets}
        for proto in list(self._tomcat_protos):
            if getattr(proto, "port", None) in ports and proto.transport is not None:
                proto.transport.abort()
                self._tomcat_protos.discard(proto)
        for srv in servers:
            await srv.wait_closed()

    async def _start_tomcat(self, relocate=None) -> None:
        if self._tomcat_servers or not self.running or self.faults.down:
            return
        if self.tomcat_state != "STARTED":
            return
        loop = asyncio.get_running_loop()
        ctx = self._ssl_context()

        def track(factory):
            def make():
                proto = factory()
                self._tomcat_protos.add(proto)
                return proto

            return make

        for i, port in enumerate(list(self.web_ports)):
            if self.web_service(i) != TOMCAT:
                continue
            srv = await self._listen(
                lambda p: loop.create_server(
                    track(lambda: _WebProtocol(self, p)), "127.0.0.1", p, ssl=ctx,
                    reuse_address=True,
                ),
                port,
                ("web", i),
                relocate,
            )
            self._tomcat_servers.append(srv)
        if self.rest_port and self._rest_runner is not None:
            srv = await self._listen(
                lambda p: loop.create_server(
                    track(self._rest_runner.server), "127.0.0.1", p, ssl=ctx, reuse_address=True
                ),
                self.rest_port,
                ("rest",),
                relocate,
            )
            self._tomcat_servers.append(srv)

    async def _stop_tomcat(self) -> None:
        servers, self._tomcat_servers = self._tomcat_servers, []
        for srv in servers:
            srv.close()
        mine = {p for s in self._service_servers.values() for srv in s
                for p in [srv.sockets[0].getsockname()[1]] if srv.sockets}
        for proto in list(self._tomcat_protos):
            if getattr(proto, "port", None) in mine:
                continue  # another service's connection
            transport = getattr(proto, "transport", None)
            if transport is not None:
                transport.abort()
            self._tomcat_protos.discard(proto)
        for srv in servers:
            await srv.wait_closed()

    async def restart_tomcat(self, emit: Emit) -> None:
        rs = self.site.restart_for(TOMCAT)
        async with self._lock:
            self.tomcat_state = "STOPPING"
            await emit("Cisco Tomcat[STOPPING]")
            await self._stop_tomcat()
            self.tomcat_state = "STOPPED"
            await asyncio.sleep(rs / 2)
            self.tomcat_state = "STARTING"
            await emit("Cisco Tomcat[STARTING]")
            await asyncio.sleep(rs / 2)
            self._activate([TOMCAT])
            self.tomcat_state = "STARTED"
            await self._start_tomcat()
            if not self.faults.restart_no_started:
                await emit("Cisco Tomcat[STARTED]")

    async def restart_other(self, service: str, emit: Emit) -> None:
        """Another service: a web service reloads its own listeners (and certificates)."""
        rs = self.site.restart_for(service)
        web = service in self.web_services
        self.services[service] = "STOPPING"
        await emit(f"{service}[STOPPING]")
        if web:
            await self._stop_service(service)
        await asyncio.sleep(rs / 2)
        self.services[service] = "STARTING"
        await emit(f"{service}[STARTING]")
        await asyncio.sleep(rs / 2)
        self.services[service] = "STARTED"
        if web:
            self._activate([service])
            await self._start_service(service)
            if service == finesse.SERVICE:
                finesse.restarted(self)  # TLS is up; in service only later
        if not self.faults.restart_no_started:
            await emit(f"{service}[STARTED]")

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def system_restart(self) -> None:
        """Reboot: SSH and TLS refuse connections for --restart-seconds, then come back."""
        async with self._lock:
            await asyncio.sleep(0.05)  # let the CLI flush its last lines
            self.running = False
            for s in self.services:
                self.services[s] = "STOPPED"
            await self._stop_web()
            await self._stop_ssh()
            await asyncio.sleep(self.site.delay("reboot", self.site.latency.get("restart", 5.0)))
            self._activate()
            self.upgrade_open = False  # [assumed] a reboot ends an open upgrade session
            for s in self.services:
                self.services[s] = "STARTED"
            self.running = True
            if not self.faults.down:
                await self._start_ssh()
                await self._start_web()
            if finesse.SERVICE in self.web_services:
                finesse.restarted(self)

    async def set_down(self, down: bool) -> None:
        self.faults.down = down
        if down:
            await self._stop_web()
            await self._stop_ssh()
        elif self.running:
            await self._start_ssh()
            await self._start_web()


class _WebProtocol(asyncio.Protocol):
    """A tiny HTTP responder behind each Tomcat web port (the TLS handshake is what matters)."""

    def __init__(self, node: MockNode, port: int):
        self.node = node
        self.port = port
        self.transport = None
        self.buf = b""

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if b"\r\n\r\n" in self.buf or b"\n\n" in self.buf or len(self.buf) > 65536:
            body = f"{self.node.host} port {self.port}: Cisco Tomcat (vosmock)\n".encode()
            self.transport.write(
                finesse.answer(self.node, self.port, self.buf)
                or b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            self.transport.close()

    def connection_lost(self, exc) -> None:
        self.node._tomcat_protos.discard(self)
