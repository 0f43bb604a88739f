"""The product facts, once: roles, the web services each role runs, and the version rules.

Every other module asks this one; nothing else compares role strings. Adding a VOS product
(Finesse, CUIC, ...) is one :class:`RoleSpec` per role here, its counterpart in the mock,
and tests.

Sources (marked as in the mock's README): [doc] Cisco 210528 "Understand ECDSA certificates
in an UCCX solution" (which web servers present tomcat-ECDSA, and which certificate each
presents to a browser), Cisco 118855 (ECDSA dropped from UCCX/SocialMiner from 11.6), the UCCX
11.5 and CUCM 11.5 port utilization guides (which service listens where); [assumed] where a
fact is our best reading.

What a browser is shown (:meth:`WebService.to_browser`): a browser offers both RSA and ECDSA,
so the server chooses. Cisco 210528 gives the choice per web server instance and per state of
``tomcat-ECDSA`` (self-signed, CA-signed with EC, CA-signed with RSA); UCCX/SocialMiner 11.x
serve TLS 1.0-1.2 only (Cisco 201000), where the server's cipher preference decides.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "COP_ACTIONS",
    "COP_KEYS",
    "ECDSA_UNIT",
    "RSA_UNIT",
    "TOMCAT",
    "EcdsaState",
    "Product",
    "ReadinessCheck",
    "Role",
    "RoleSpec",
    "WebService",
    "browser_problem",
    "client_auth_notice",
    "cop_action",
    "cop_installed",
    "ecdsa_in_use",
    "multi_san_available",
    "read_only_command",
    "release",
    "restart_waves",
    "spec",
]

#: the certificate units this procedure is about
ECDSA_UNIT = "tomcat-ECDSA"
RSA_UNIT = "tomcat"
#: the key type of each unit's certificate (as cckit.certs names key types)
KEY_TYPES = {RSA_UNIT: "RSA", ECDSA_UNIT: "EC"}
#: the trust store unit tomcat (RSA and ECDSA) chains are checked against
TRUST_UNIT = "tomcat-trust"
TOMCAT = "Cisco Tomcat"


class Product(enum.StrEnum):
    UCCX = "uccx"
    SOCIALMINER = "socialminer"
    CUCM = "cucm"


class Role(enum.StrEnum):
    UCCX_PUBLISHER = "uccx-publisher"
    UCCX_SUBSCRIBER = "uccx-subscriber"
    SOCIALMINER = "socialminer"
    CUCM_PUBLISHER = "cucm-publisher"
    CUCM_SUBSCRIBER = "cucm-subscriber"


class EcdsaState(enum.StrEnum):
    """A node's ``tomcat-ECDSA`` as Cisco 210528's rows tell it apart: what decides which
    certificate a browser is shown."""

    SELF_SIGNED = "self-signed"
    EC_SIGNED = "CA-signed with EC"
    RSA_SIGNED = "CA-signed with RSA"
    #: not offered at all: the disable COP, ``cert_type rsa``, or no tomcat-ECDSA (11.6+)
    NOT_OFFERED = "not offered"

    @classmethod
    def of(cls, self_signed: bool, signed_with: str | None) -> EcdsaState:
        """The state of an offered tomcat-ECDSA (``signed_with``: ``EC`` or ``RSA``)."""
        if self_signed:
            return cls.SELF_SIGNED
        return cls.RSA_SIGNED if signed_with == "RSA" else cls.EC_SIGNED


def browser_problem(key_type: str, self_signed: bool, signed_with: str) -> str | None:
    """Why a browser shown this certificate troubles agents, if it does: the extra
    tomcat-ECDSA of 11.5 when it is self-signed (a prompt to accept; blocked where the RSA
    certificates are CA-signed) or signed with RSA (not meant to be presented: on
    SocialMiner it breaks chat and email, CSCvb58580) [doc: Cisco 210528]. None: no
    problem of this procedure's (the RSA tomcat is as it was before 11.5)."""
    if key_type != KEY_TYPES[ECDSA_UNIT]:
        return None
    if self_signed:
        return "a self-signed tomcat-ECDSA"
    return "a tomcat-ECDSA signed with RSA" if signed_with == "RSA" else None


@dataclass(frozen=True)
class WebService:
    """A service whose TLS ports present certificates; restarting it reloads them."""

    name: str
    ports: tuple[int, ...]
    presents: tuple[str, ...] = (RSA_UNIT, ECDSA_UNIT)
    #: what agents (and administrators) reach on its ports, in their words
    serves: str = ""
    #: a browser (a client offering RSA and ECDSA) is shown tomcat-ECDSA when it is offered
    browser_ecdsa: bool = False
    #: ... even when a CA signed it with RSA (otherwise: the RSA tomcat then)
    browser_rsa_signed_ecdsa: bool = False
    #: where ``browser_ecdsa`` comes from ([doc] or [assumed], as the mock's README marks)
    source: str = ""

    def to_browser(self, state: EcdsaState) -> str:
        """The unit this service presents to a browser while tomcat-ECDSA is ``state``."""
        if (ECDSA_UNIT not in self.presents or not self.browser_ecdsa
                or state is EcdsaState.NOT_OFFERED):
            return RSA_UNIT
        if state is EcdsaState.RSA_SIGNED and not self.browser_rsa_signed_ecdsa:
            return RSA_UNIT
        return ECDSA_UNIT

    @property
    def label(self) -> str:
        """``Live Data`` (what agents call it), else the service name."""
        return self.serves or self.name


@dataclass(frozen=True)
class ReadinessCheck:
    """What must answer before a restarted node counts as back for its users, beyond TLS.

    ``GET https://<node>:<port><path>`` answers XML whose ``<status>`` is ``ready`` once the
    application is in service; until then it says another status (or answers 503, or not
    at all). Polled after every restart, before the next HA wave starts.
    """

    #: what answers (``Finesse``): "<name> <ready>" reads as what is waited for
    name: str
    #: the web service whose restart the check follows, and its port
    service: str
    port: int
    path: str
    ready: str
    #: the other documented values of ``<status>`` (shown in messages)
    not_ready: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``Finesse IN_SERVICE``."""
        return f"{self.name} {self.ready}"


# [doc] Finesse is in service when its SystemInfo says IN_SERVICE; OUT_OF_SERVICE (and
# PARTIAL_SERVICE, where Finesse answers 503 to every other request) while its dependencies
# (CTI, the notification service) are not up: Finesse developer guide, SystemInfo and
# SystemInfo.Statuses, "Failure Scenarios" (a client periodically checks SystemInfo for
# IN_SERVICE) and the desktop API errors (503 "when the system is just starting up").
FINESSE_IN_SERVICE = ReadinessCheck(
    "Finesse", "Cisco Finesse Tomcat", 8445, "/finesse/api/SystemInfo",
    "IN_SERVICE", ("OUT_OF_SERVICE", "PARTIAL_SERVICE"))


@dataclass(frozen=True)
class RoleSpec:
    """What a node of one role is: its product, HA place, web services and COP family."""

    role: Role
    product: Product
    label: str
    #: the cluster's first node: trust uploaded here replicates to its subscribers
    publisher: bool
    #: the largest number of such nodes in one site (None: any)
    max_per_site: int | None
    #: HA restart wave: every node of wave 0 serves TLS again before wave 1 goes down
    restart_wave: int
    #: CA certificates must be uploaded here (publishers, and nodes that do not replicate)
    trust_target: bool
    web_services: tuple[WebService, ...]
    #: the COP family in the site file's ``cop_files`` (``<family>_disable``), if any
    cop_family: str | None
    #: the releases (major, minor) that use tomcat-ECDSA; ``None`` as the upper bound: all later
    ecdsa_from: tuple[int, int] = (11, 5)
    ecdsa_until: tuple[int, int] | None = (11, 5)
    #: the field notice saying that, from this release (major, minor) on, a CA-signed
    #: identity used for mutual TLS must carry the clientAuth EKU; None: no notice says so
    client_auth_from: tuple[int, int] | None = None
    client_auth_notice: str = ""
    #: what an RSA-signed tomcat-ECDSA breaks on this role, beyond not being presented
    rsa_signed_ecdsa_breaks: str = ""
    #: what a restarted node must pass before the next HA wave, beyond serving TLS again
    #: (None: TLS on every web port is the whole check)
    readiness: ReadinessCheck | None = None

    @property
    def replicates_trust(self) -> bool:
        """Receives tomcat-trust from its cluster's publisher (is no trust target itself)."""
        return not self.trust_target and not self.publisher

    @property
    def ports(self) -> tuple[int, ...]:
        """Every web port of the role, in service order."""
        return tuple(p for s in self.web_services for p in s.ports)

    def service_on(self, port: int) -> WebService | None:
        return next((s for s in self.web_services if port in s.ports), None)

    def services_presenting(self, unit: str) -> tuple[str, ...]:
        """The services to restart so that a new ``unit`` certificate is presented."""
        return tuple(s.name for s in self.web_services if unit in s.presents)

    def to_browser(self, port: int, state: EcdsaState) -> str | None:
        """The unit ``port`` presents to a browser while tomcat-ECDSA is ``state`` (None:
        not a web port of this role)."""
        service = self.service_on(port)
        return service.to_browser(state) if service else None


# UCCX 11.5 runs Finesse, CUIC and the notification/socket services on both nodes [doc:
# UCCX 11.5 port utilization guide]; 210528 lists them as presenting tomcat-ECDSA to an
# ECDSA client [doc]. The split of one Tomcat per port is our reading [assumed].
#
# What a browser is shown (Cisco 210528, "What are the certificates that are offered by
# different web server instances by default?", per row: RSA CA-signed tomcat with an EC
# CA-signed, an RSA CA-signed or a self-signed tomcat-ECDSA) [doc]: UCCX Tomcat, UCCX
# Openfire (the Notification Service) and SocialMiner Tomcat present the RSA tomcat in every
# row; UCCX Socket.IO (Live Data) presents tomcat-ECDSA when it is self-signed or EC-signed
# and falls back to RSA when a CA signed it with RSA ("this certificate would not be presented
# to the client"); SocialMiner's Openfire (chat and email) presents tomcat-ECDSA in every
# row unless the COP is installed (CSCvb58580: an RSA-signed one breaks chat and email).
# Hence "the agents need to be advised to accept the certificate warning they are offered in
# the chat-email gadget and Live Data gadgets" (210528, self-signed certificates).
_T210528 = "[doc] Cisco 210528"
_UCCX_WEB = (
    WebService(TOMCAT, (8443,), serves="UCCX administration",
               source=f"{_T210528} (UCCX Tomcat: RSA in every row)"),
    WebService("Cisco Finesse Tomcat", (8445,), serves="Finesse desktop",
               source=f"[assumed] as {_T210528}'s UCCX Tomcat"),
    WebService("Cisco Unified Intelligence Center Reporting Service", (8444,),
               serves="CUIC reports", source=f"[assumed] as {_T210528}'s UCCX Tomcat"),
    WebService("Cisco Unified CCX Notification Service", (7443,),
               serves="Finesse notifications",
               source=f"{_T210528} (UCCX Openfire: RSA in every row)"),
    WebService("Cisco Unified CCX Socket.IO Service", (12015,), serves="Live Data",
               browser_ecdsa=True,
               source=f"{_T210528} (UCCX Socket.IO: ECDSA when self-signed or EC-signed, "
                      "RSA when RSA-signed)"),
)
# SocialMiner's web application behind 443 [doc: 11.5 port guide]; its XMPP (Openfire) BOSH
# port presents ECDSA too per 210528 [doc]; service names are not public [assumed].
_SM_WEB = (
    WebService(TOMCAT, (443,), serves="SocialMiner administration",
               source=f"{_T210528} (SocialMiner Tomcat: RSA in every row)"),
    WebService("Cisco SocialMiner Notification Service", (7443,), serves="chat and email",
               browser_ecdsa=True, browser_rsa_signed_ecdsa=True,
               source=f"{_T210528} (SocialMiner Openfire: ECDSA in every row, an RSA-signed "
                      "one too unless the COP is installed: CSCvb58580)"),
)
# CUCM: Cisco Tomcat serves the administration pages on 8443 (and 443) [doc: CUCM 11.5 TCP
# and UDP port usage]; tomcat-ECDSA exists from 11.5 on and stays in 12.x/14 [doc: CUCM 11.5
# security guide].
# To a browser: no Cisco table found; OpenSSL-style client preference (ECDSA first) [assumed].
_CUCM_WEB = (WebService(TOMCAT, (8443,), serves="CUCM administration", browser_ecdsa=True,
                        browser_rsa_signed_ecdsa=True,
                        source="[assumed] the client's preference (no Cisco table)"),)

# Public CAs stop issuing the clientAuth EKU (Chrome Root Program, 2026); where a node uses
# its tomcat identity as a client too, mutual TLS between nodes then fails. [doc: FN74382,
# contact-center products at 12.5(1), 12.6 and 15.0 — UCCX and CCP (SocialMiner's later
# name) as issue 13 cites it; FN74345, every CUCM release]. That the identity concerned is
# the RSA ``tomcat`` one is our reading [assumed].
_FN74382 = {"client_auth_from": (12, 5), "client_auth_notice": "FN74382"}
_FN74345 = {"client_auth_from": (0, 0), "client_auth_notice": "FN74345"}
#: the identities a node also presents as a TLS client (FN74382/FN74345) [assumed]
CLIENT_AUTH_UNITS = (RSA_UNIT,)

_SPECS: dict[Role, RoleSpec] = {
    s.role: s for s in (
        RoleSpec(Role.UCCX_PUBLISHER, Product.UCCX, "UCCX publisher", publisher=True,
                 max_per_site=1, restart_wave=1, trust_target=True, web_services=_UCCX_WEB,
                 cop_family="uccx", readiness=FINESSE_IN_SERVICE, **_FN74382),
        RoleSpec(Role.UCCX_SUBSCRIBER, Product.UCCX, "UCCX subscriber", publisher=False,
                 max_per_site=1, restart_wave=0, trust_target=False, web_services=_UCCX_WEB,
                 cop_family="uccx", readiness=FINESSE_IN_SERVICE, **_FN74382),
        # a separate application: restarted alongside the subscriber (issue 12). It runs no
        # Finesse (Finesse is co-resident on the UCCX nodes only [doc: Finesse developer
        # guide, "coresident Finesse deployment with Unified CCX"]) and no public document
        # names an in-service API for it: serving TLS again is its whole check.
        RoleSpec(Role.SOCIALMINER, Product.SOCIALMINER, "SocialMiner", publisher=False,
                 max_per_site=None, restart_wave=0, trust_target=True, web_services=_SM_WEB,
                 cop_family="socialminer", **_FN74382,
                 rsa_signed_ecdsa_breaks="chat and email (CSCvb58580)"),
        RoleSpec(Role.CUCM_PUBLISHER, Product.CUCM, "CUCM publisher", publisher=True,
                 max_per_site=1, restart_wave=1, trust_target=True, web_services=_CUCM_WEB,
                 cop_family=None, ecdsa_until=None, **_FN74345),
        RoleSpec(Role.CUCM_SUBSCRIBER, Product.CUCM, "CUCM subscriber", publisher=False,
                 max_per_site=None, restart_wave=0, trust_target=False,
                 web_services=_CUCM_WEB, cop_family=None, ecdsa_until=None, **_FN74345),
    )
}

ROLES: tuple[str, ...] = tuple(r.value for r in Role)
#: what a COP does to tomcat-ECDSA
COP_ACTIONS = ("disable", "rollback")
#: the site file's ``cop_files`` keys: ``<family>_<action>`` for each role's COP family
COP_KEYS: tuple[str, ...] = tuple(dict.fromkeys(
    f"{s.cop_family}_{a}" for s in _SPECS.values() if s.cop_family for a in COP_ACTIONS))


def spec(role: Role | str) -> RoleSpec:
    """The facts of ``role``; a ``ValueError`` names the known roles."""
    try:
        return _SPECS[Role(role)]
    except ValueError:
        raise ValueError(f"unknown role {role!r} (use {', '.join(ROLES)})") from None


def release(version: str) -> tuple[int, ...]:
    """``11.5.1.10000-61`` -> ``(11, 5, 1)``."""
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def ecdsa_in_use(role: Role | str, version: str) -> bool:
    """Whether a node of ``role`` at ``version`` presents tomcat-ECDSA at all.

    From UCCX 11.6 on, ECDSA is no longer used by the UCCX solution (Cisco 118855); CUCM
    keeps it from 11.5 on.
    """
    s, rel = spec(role), release(version)[:2]
    return rel >= s.ecdsa_from and (s.ecdsa_until is None or rel <= s.ecdsa_until)


def cop_installed(listed: Iterable[str], file: str) -> bool:
    """Whether the COP ``file`` (as named on the SFTP server, ``....cop.sgn``) is among the
    ``listed`` ones: ``show version active`` lists installed COPs without the ``.sgn`` of
    the signed file (``cmterm-devicepack9.1.2.13070-1.cop``) [doc: public COP tools]."""
    def unsigned(name: str) -> str:
        name = name.strip()
        return name[: -len(".sgn")] if name.lower().endswith(".sgn") else name

    return any(unsigned(c) == unsigned(file) for c in listed)


def restart_waves(roles: Iterable[tuple[str, Role | str]]) -> list[list[str]]:
    """Group ``(name, role)`` pairs into HA restart waves, in site order within a wave.

    Never both nodes of an HA pair in one wave: the subscribers (and SocialMiner, a separate
    application) first, the publishers once those serve TLS again.
    """
    waves: dict[int, list[str]] = {}
    for name, role in roles:
        waves.setdefault(spec(role).restart_wave, []).append(name)
    return [waves[k] for k in sorted(waves)]


def client_auth_notice(role: Role | str, version: str, unit: str) -> str | None:
    """The field notice by which ``unit`` on a ``role`` node at ``version`` needs the
    clientAuth EKU when a CA signs it (None: no notice asks for it)."""
    s = spec(role)
    if unit not in CLIENT_AUTH_UNITS or s.client_auth_from is None:
        return None
    return s.client_auth_notice if release(version)[:2] >= s.client_auth_from else None


#: one multi-server SAN tomcat CSR for the UCCX publisher and subscriber from 11.6(2) on
#: (issue 14); CUCM has had it since 10.5 [doc: Cisco 118731]
MULTI_SAN_FROM = {"uccx": (11, 6, 2), "cucm": (10, 5, 0)}


def multi_san_available(role: Role | str, version: str) -> bool:
    """Whether a ``role`` node at ``version`` can generate a multi-server SAN tomcat CSR."""
    s = spec(role)
    since = MULTI_SAN_FROM.get(s.product)
    return (since is not None and s.product in ("uccx", "cucm")
            and (s.publisher or str(s.role).endswith("subscriber"))
            and release(version)[:3] >= since)


# Commands of the VOS CLI that change nothing on a node: ``show ...``, ``utils service
# list`` [doc: VOS CLI reference], and ``set cli pagination on|off``, which applies to the
# current CLI session only [doc: CLI reference for Cisco Unified Solutions].
_READ_ONLY = re.compile(r"show\s+\S.*|utils\s+service\s+list|set\s+cli\s+pagination\s+(on|off)",
                        re.I)


def read_only_command(command: str) -> bool:
    """Whether ``command`` only reads (the inventory sends nothing else)."""
    return bool(_READ_ONLY.fullmatch(command.strip()))


# The ECDSA COPs carry their action in the file name (``...ecdsa-disable.cop.sgn``,
# ``...ecdsa-rollback.cop.sgn``) [assumed]; ``show version active`` may list a COP without
# its ``.sgn``.
_COP_ACTION = re.compile(r"ecdsa[._-]?(disable|rollback)", re.I)


def cop_action(name: str, known: dict[str, str] | None = None) -> str | None:
    """``disable`` or ``rollback`` for an ECDSA COP (``known``: file name -> action, as the
    site file names them, wins), else None."""
    def bare(n: str) -> str:
        return n[:-4] if n.endswith(".sgn") else n

    for file, action in (known or {}).items():
        if bare(file) == bare(name):
            return action
    m = _COP_ACTION.search(name)
    return m.group(1).lower() if m else None
