"""The site model: one UCCX site (publisher, subscriber, SocialMiner) from a YAML site file.

The format is documented in ``docs/site-file.md``. Loading validates everything at once and
raises :class:`~cckit.errors.SiteFileError` listing every problem, so an engineer fixes the
file in one go.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from . import topology
from ._internal import yamlsafe
from .credentials import Secret, SecretRef, parse_secret_ref, resolve
from .errors import CredentialError, InputError, SiteFileError
from .topology import Role, RoleSpec

__all__ = [
    "ROLES",
    "CopFiles",
    "CopRepository",
    "Credential",
    "Node",
    "RestEndpoint",
    "Site",
    "WebPort",
    "discover_sites",
    "load_site",
    "parse_site",
    "resolve_site_file",
]

ROLES = topology.ROLES
TRANSPORTS = ("ssh", "rest")
DEFAULT_CREDENTIAL = "os-admin"
COP_KEYS = topology.COP_KEYS


@dataclass(frozen=True)
class Credential:
    name: str
    username: str
    password: SecretRef

    def resolve(self, *, node: str | None = None) -> tuple[str, Secret]:
        return self.username, resolve(self.password, node=node)


@dataclass(frozen=True)
class RestEndpoint:
    port: int
    cafile: Path | None = None
    fingerprint: str | None = None


@dataclass(frozen=True)
class WebPort:
    """A TLS port of a node: the service's own port, and where to connect to reach it
    (the same, unless the site file maps it, as behind NAT or on the VOS mock)."""

    port: int
    connect: int
    service: str | None = None

    @property
    def label(self) -> str:
        return f"{self.port} ({self.service})" if self.service else str(self.port)


@dataclass(frozen=True)
class Node:
    name: str
    role: Role
    host: str
    address: str
    ssh_port: int = 22
    transport: str = "ssh"
    credential: str = DEFAULT_CREDENTIAL
    web_ports: tuple[WebPort, ...] = ()
    rest: RestEndpoint | None = None
    #: the services to restart after an identity upload; empty: the role's (topology)
    services: tuple[str, ...] = ()
    #: answer "Include OU in CSR" with yes (where the node asks)
    include_ou: bool = True
    domain: str | None = None

    @property
    def spec(self) -> RoleSpec:
        return topology.spec(self.role)

    @property
    def fqdn(self) -> str:
        """The host name with the site's domain where the site file wrote a short name."""
        return self.host if "." in self.host or not self.domain else f"{self.host}.{self.domain}"

    def restart_services(self, unit: str = topology.ECDSA_UNIT) -> tuple[str, ...]:
        """The services to restart so that a new ``unit`` certificate is presented: the
        site file's ``services:``, else each service that serves one of this node's web
        ports and presents ``unit`` (topology), else the platform Tomcat."""
        if self.services:
            return self.services
        named = {wp.service for wp in self.web_ports}
        mine = tuple(s for s in self.spec.services_presenting(unit) if s in named)
        return mine or (topology.TOMCAT,)


@dataclass(frozen=True)
class CopRepository:
    host: str
    port: int
    directory: str
    credential: str


@dataclass(frozen=True)
class CopFiles:
    """The site file's ``cop_files``: ``<family>_<action>`` -> the COP's file name (the
    families and actions are the topology's: :data:`cckit.topology.COP_KEYS`)."""

    files: Mapping[str, str] = field(default_factory=dict)

    def for_node(self, node: Node, action: str) -> str | None:
        """The COP file for ``action`` (``disable`` or ``rollback``) on ``node``."""
        family = node.spec.cop_family
        return self.files.get(f"{family}_{action}") if family else None

    def for_action(self, action: str) -> tuple[str, ...]:
        """Every family's COP file for ``action``."""
        return tuple(f for k, f in self.files.items() if k.endswith(f"_{action}"))


@dataclass(frozen=True)
class Site:
    name: str
    nodes: tuple[Node, ...]
    credentials: dict[str, Credential] = field(default_factory=dict)
    domain: str | None = None
    known_hosts: Path | None = None
    cop_repository: CopRepository | None = None
    cop_files: CopFiles = CopFiles()
    path: Path | None = None
    #: the credential (a name under ``credentials``) sent to Finesse's SystemInfo, the
    #: in-service check after a restart; None: the request carries none
    finesse_credential: str | None = None

    @property
    def publisher(self) -> Node:
        """The first publisher (a site has one per product cluster)."""
        return next(n for n in self.nodes if n.spec.publisher)

    @property
    def identity(self) -> str:
        """Which site this is, whatever file describes it: a hash of the publisher's SSH
        endpoint (address, case-folded, and port). Two copies of a site file, or two files
        naming the same publisher, have one identity; the site lock is taken on it."""
        pub = self.publisher
        endpoint = f"{pub.address.strip().lower()}:{pub.ssh_port}"
        return hashlib.sha256(endpoint.encode("utf-8")).hexdigest()[:16]

    @property
    def subscribers(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if not n.spec.publisher
                     and n.spec.product is self.publisher.spec.product)

    def trust_targets(self, among: Iterable[Node] | None = None) -> tuple[Node, ...]:
        """Where CA certificates go: each cluster's publisher (trust replicates to its
        subscribers) and each node that does not replicate (SocialMiner). A publisher is
        included whenever one of its cluster is in ``among``."""
        chosen = set(n.name for n in (self.nodes if among is None else among))
        products = {n.spec.product for n in self.nodes if n.name in chosen}
        return tuple(n for n in self.nodes if n.spec.trust_target and (
            n.name in chosen or (n.spec.publisher and n.spec.product in products)))

    def replicas(self, among: Iterable[Node] | None = None) -> tuple[Node, ...]:
        """The nodes of ``among`` (default: all) that receive tomcat-trust from their
        cluster's publisher by replication instead of their own upload (topology)."""
        return tuple(n for n in (self.nodes if among is None else among)
                     if n.spec.replicates_trust and self.trust_source(n) is not None)

    def trust_source(self, node: Node) -> Node | None:
        """The publisher whose tomcat-trust ``node`` receives by replication, if any."""
        if not node.spec.replicates_trust:
            return None
        return next((n for n in self.nodes
                     if n.spec.publisher and n.spec.product is node.spec.product), None)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"site {self.name!r} has no node {name!r} "
                       f"(nodes: {', '.join(n.name for n in self.nodes)})")

    def select(self, names: Iterable[str] | None) -> tuple[Node, ...]:
        """The nodes named (all when ``names`` is empty or None), in site order."""
        if not names:
            return self.nodes
        wanted = list(names)
        unknown = [w for w in wanted if w not in {n.name for n in self.nodes}]
        if unknown:
            raise SiteFileError(
                [f"unknown node(s) {', '.join(unknown)}; the site has "
                 f"{', '.join(n.name for n in self.nodes)}"],
                file=str(self.path) if self.path else None,
            )
        return tuple(n for n in self.nodes if n.name in wanted)

    def credential_for(self, node: Node) -> tuple[str, Secret]:
        cred = self.credentials.get(node.credential)
        if cred is None:  # validated on load; kept for hand-built Sites
            raise CredentialError(f"no credential named {node.credential!r}", node=node.name)
        return cred.resolve(node=node.name)


# --------------------------------------------------------------------------- parsing


def load_site(path: str | Path) -> Site:
    """Load and validate a site file."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(yamlsafe.MAX_CHARS + 1)
    except OSError as e:
        raise SiteFileError([f"cannot read the site file: {e.strerror}"], file=str(path)) from None
    if len(raw) > yamlsafe.MAX_CHARS:
        raise SiteFileError([f"the file is larger than {yamlsafe.MAX_CHARS // 1024} KiB: not a "
                             "site file"], file=str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SiteFileError(["not UTF-8 text"], file=str(path)) from None
    try:
        data = yamlsafe.load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SiteFileError([f"not valid YAML{where}: {getattr(e, 'problem', e)}"],
                            file=str(path)) from None
    return parse_site(data, base_dir=path.parent, source=str(path))


def resolve_site_file(value: str | os.PathLike) -> Path:
    """The one rule for where a site file is: an absolute path as it is; a relative one
    against the folder the user launched cckit from (``CCKIT_LAUNCH_DIR``, which
    ``cckit lab`` sets for its notebooks' kernels), else this process's working folder (a
    command line's). A missing file is an :class:`~cckit.errors.InputError` naming the
    absolute path it looked at."""
    path = Path(value).expanduser()
    where = ""
    if not path.is_absolute():
        launched = os.environ.get("CCKIT_LAUNCH_DIR")
        base = Path(launched or os.getcwd())
        path = base / path
        where = (f" (relative paths resolve against {base}, the folder "
                 f"{'cckit lab was started in' if launched else 'this process runs in'})")
    if not path.is_file():
        raise InputError(f"site file {path} not found{where}", file=str(path),
                         hint="set site_file to an absolute path, or one relative to that "
                              "folder; \"\" = the embedded mock")
    return path


def discover_sites(path: str | os.PathLike) -> list[Path]:
    """Site files from a directory (``*.yaml``/``*.yml``) or a list file (one path a line)."""
    p = Path(path)
    if p.is_dir():
        files = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
    elif p.is_file():
        files = []
        for line in p.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                f = Path(line).expanduser()
                files.append(f if f.is_absolute() else p.parent / f)
    else:
        raise InputError(f"{p} is neither a folder of site files nor a list of them",
                         file=str(p))
    if not files:
        raise InputError(f"no site files found in {p}", file=str(p),
                         hint="put one <site>.yaml per site there (docs/site-file.md)")
    return files


def _port(value: Any, where: str, problems: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        problems.append(f"{where}: bad port {value!r} (an integer 1..65535)")
        return 0
    return value


#: the longest site or node name (they name folders and files) and any other text field
NAME_LIMIT, TEXT_LIMIT = 64, 255


def _printable(text: str) -> bool:
    """No line break or control character (they would split a CLI command or a record line,
    or hide text on a terminal)."""
    return not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029" for c in text)


def _label(value: Any) -> str:
    """``value`` fit to name a place in a problem message (one line)."""
    text = str(value)
    return text if _printable(text) and len(text) <= NAME_LIMIT else "unprintable name"


def _str(d: dict, key: str, where: str, problems: list[str], *, required: bool = True,
         default: str | None = None, limit: int = TEXT_LIMIT) -> str | None:
    v = d.get(key, default)
    if v is None:
        if required:
            problems.append(f"{where}: missing {key!r}")
        return None
    if not isinstance(v, str) or not v.strip():
        problems.append(f"{where}.{key}: expected a non-empty string, got "
                        f"{v!r}"[:TEXT_LIMIT])
        return None
    if not _printable(v):
        problems.append(f"{where}.{key}: contains a line break or control character")
        return None
    if len(v.strip()) > limit:
        problems.append(f"{where}.{key}: longer than {limit} characters")
        return None
    return v.strip()


_NODE_KEYS = {"name", "role", "host", "address", "ssh_port", "transport", "credential",
              "web_ports", "rest", "services", "include_ou"}
_SITE_KEYS = {"site", "domain", "credentials", "known_hosts", "nodes", "cop_repository",
              "cop_files", "finesse"}


def parse_site(data: Any, *, base_dir: Path | None = None, source: str | None = None) -> Site:
    """Validate a parsed site file; raise :class:`SiteFileError` with every problem found."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise SiteFileError(["the site file must be a YAML mapping (site:, nodes:, ...)"],
                            file=source)
    base_dir = base_dir or Path.cwd()
    for k in sorted(set(data) - _SITE_KEYS):
        problems.append(f"unknown key {k!r} at the top level")
    name = _str(data, "site", "site file", problems, limit=NAME_LIMIT) or ""
    domain = _str(data, "domain", "site file", problems, required=False)

    credentials: dict[str, Credential] = {}
    creds = data.get("credentials") or {}
    if not isinstance(creds, dict):
        problems.append("credentials: expected a mapping of name -> {username, password}")
        creds = {}
    for cname, spec in creds.items():
        where = f"credentials.{_label(cname)}"
        if not isinstance(spec, dict):
            problems.append(f"{where}: expected {{username, password}}")
            continue
        user = _str(spec, "username", where, problems)
        ref, errs = parse_secret_ref(spec.get("password"), f"{where}.password", base_dir)
        if "password" not in spec:
            errs = [f"{where}: missing 'password' (where the secret is: env, keyring or file)"]
        problems.extend(errs)
        if user and ref:
            credentials[str(cname)] = Credential(str(cname), user, ref)

    known_hosts = None
    if data.get("known_hosts") is not None:
        kh = _str(data, "known_hosts", "site file", problems)
        if kh:
            known_hosts = Path(kh).expanduser()
            if not known_hosts.is_absolute():
                known_hosts = base_dir / known_hosts

    nodes: list[Node] = []
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        problems.append("nodes: expected a list with at least the UCCX publisher")
        raw_nodes = []
    for i, rn in enumerate(raw_nodes):
        node = _parse_node(rn, i, credentials, creds, problems, base_dir)
        if node:
            nodes.append(node)

    # Count roles as written, so a publisher with another mistake is not also "missing".
    roles = [rn.get("role") for rn in raw_nodes if isinstance(rn, dict)]
    problems.extend(_role_problems(roles, raw_nodes))
    for attr, label in (("name", "node names"), ("host", "hosts")):
        seen: dict[str, str] = {}
        for n in nodes:
            v = getattr(n, attr).lower()
            if v in seen:
                problems.append(f"duplicate {label[:-1]} {getattr(n, attr)!r} "
                                f"(nodes {seen[v]} and {n.name})")
            seen[v] = n.name
    endpoints: dict[tuple[str, int], str] = {}
    for n in nodes:
        key = (n.address.lower(), n.ssh_port)
        if key in endpoints and n.transport == "ssh":
            problems.append(f"nodes {endpoints[key]} and {n.name} share the SSH endpoint "
                            f"{n.address}:{n.ssh_port}")
        endpoints[key] = n.name

    repo = None
    rr = data.get("cop_repository")
    if rr is not None:
        if not isinstance(rr, dict):
            problems.append("cop_repository: expected {host, port, directory, credential}")
        else:
            where = "cop_repository"
            host = _str(rr, "host", where, problems)
            port = _port(rr.get("port", 22), f"{where}.port", problems)
            directory = _str(rr, "directory", where, problems)
            cname = _str(rr, "credential", where, problems)
            if "password" in rr:
                problems.append(f"{where}.password: secret written inline; name a credential "
                                "under credentials: instead")
            if cname and cname not in creds:
                problems.append(f"{where}.credential: no credential named {cname!r}")
            if host and port and directory and cname:
                repo = CopRepository(host, port, directory, cname)

    cop_files = CopFiles()
    cf = data.get("cop_files")
    if cf is not None:
        if not isinstance(cf, dict):
            problems.append(f"cop_files: expected a mapping with {', '.join(COP_KEYS)}")
        else:
            for k in sorted(set(cf) - set(COP_KEYS)):
                problems.append(f"cop_files: unknown key {k!r} (known: {', '.join(COP_KEYS)})")
            vals = {}
            for k in COP_KEYS:
                v = _str(cf, k, "cop_files", problems, required=False)
                if v and ("/" in v or not v.endswith(".cop.sgn")):
                    problems.append(f"cop_files.{k}: {v!r} should be a file name ending in "
                                    ".cop.sgn (the directory is in cop_repository)")
                if v:
                    vals[k] = v
            cop_files = CopFiles(vals)

    finesse_credential = _finesse(data.get("finesse"), creds, problems)
    if problems:
        raise SiteFileError(problems, file=source)
    nodes = [replace(n, domain=domain) for n in nodes]
    return Site(name=name, nodes=tuple(nodes), credentials=credentials, domain=domain,
                known_hosts=known_hosts, cop_repository=repo, cop_files=cop_files,
                path=Path(source) if source else None, finesse_credential=finesse_credential)


def _finesse(value: Any, creds: dict, problems: list[str]) -> str | None:
    """``finesse: {credential: NAME}``: which credential the in-service check sends."""
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append("finesse: expected {credential: NAME}")
        return None
    for k in sorted(set(value) - {"credential"}):
        hint = " (secrets go under credentials:, by reference)" if "pass" in str(k) else ""
        problems.append(f"finesse: unknown key {k!r}{hint}")
    name = _str(value, "credential", "finesse", problems)
    if name and name not in creds:
        problems.append(f"finesse.credential: no credential named {name!r}")
        return None
    return name


def _role_problems(roles: list[Any], raw_nodes: list[Any]) -> list[str]:
    """A site is one cluster per product: exactly one publisher where it has any node of
    that product, and no more nodes of a role than the role allows."""
    known = [topology.spec(r) for r in roles if r in ROLES]
    problems = []
    if raw_nodes and not any(s.publisher for s in known):
        problems.append("no node has role uccx-publisher (or cucm-publisher): a site needs "
                        "exactly one publisher")
    for product in dict.fromkeys(s.product for s in known) if not problems else ():
        pub_roles = [r for r in ROLES if topology.spec(r).product is product
                     and topology.spec(r).publisher]
        if pub_roles and not any(s.product is product and s.publisher for s in known):
            problems.append(f"{product.value} nodes but no {pub_roles[0]}: a cluster has "
                            "exactly one")
    for role in ROLES:
        limit = topology.spec(role).max_per_site
        if limit is not None and roles.count(role) > limit:
            if topology.spec(role).publisher:
                names = ", ".join(str(rn.get("name")) for rn in raw_nodes
                                  if isinstance(rn, dict) and rn.get("role") == role)
                problems.append(f"two or more publishers ({names}): a site has exactly one")
            else:
                problems.append(f"more than one {role}: a UCCX HA pair has one subscriber")
    return problems


def _web_ports(value: Any, spec: RoleSpec | None, where: str,
               problems: list[str]) -> tuple[WebPort, ...]:
    """A list of the node's TLS ports, or a mapping port -> where to connect (NAT, mock);
    absent: every web port of the role (topology)."""
    if value is None:
        pairs = [(p, p) for p in spec.ports] if spec else []
    elif isinstance(value, list):
        pairs = [(p, p) for p in value]
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        problems.append(f"{where}.web_ports: expected a list of ports or a mapping "
                        "port -> port to connect to")
        return ()
    out = []
    for port, connect in pairs:
        p = _port(port, f"{where}.web_ports", problems)
        c = _port(connect, f"{where}.web_ports", problems)
        if p and c:
            svc = spec.service_on(p) if spec else None
            out.append(WebPort(p, c, svc.name if svc else None))
    return tuple(out)


def _parse_node(rn: Any, i: int, credentials: dict[str, Credential], raw_creds: dict,
                problems: list[str], base_dir: Path) -> Node | None:
    if not isinstance(rn, dict):
        problems.append(f"nodes[{i}]: expected a mapping")
        return None
    where = f"nodes[{i}]" + (f" ({_label(rn['name'])})" if isinstance(rn.get("name"), str)
                             else "")
    n0 = len(problems)
    for k in sorted(set(rn) - _NODE_KEYS):
        hint = " (secrets go under credentials:, by reference)" if "pass" in str(k) else ""
        problems.append(f"{where}: unknown key {k!r}{hint}")
    name = _str(rn, "name", where, problems, limit=NAME_LIMIT)
    role = _str(rn, "role", where, problems)
    if role and role not in ROLES:
        problems.append(f"{where}: unknown role {role!r} (use {', '.join(ROLES)})")
    spec = topology.spec(role) if role in ROLES else None
    host = _str(rn, "host", where, problems)
    address = _str(rn, "address", where, problems, required=False) or host
    ssh_port = _port(rn.get("ssh_port", 22), f"{where}.ssh_port", problems)
    transport = _str(rn, "transport", where, problems, required=False, default="ssh")
    if transport and transport not in TRANSPORTS:
        problems.append(f"{where}: unknown transport {transport!r} (use ssh or rest)")
    credential = _str(rn, "credential", where, problems, required=False,
                      default=DEFAULT_CREDENTIAL)
    if credential and credential not in raw_creds:
        problems.append(f"{where}: credential {credential!r} is not defined under credentials:")
    web_ports = _web_ports(rn.get("web_ports"), spec, where, problems)
    rest = None
    rr = rn.get("rest")
    if rr is not None:
        if not isinstance(rr, dict):
            problems.append(f"{where}.rest: expected {{port, cafile | fingerprint}}")
        else:
            rport = _port(rr.get("port"), f"{where}.rest.port", problems)
            cafile = rr.get("cafile")
            capath = None
            if cafile is not None:
                capath = Path(str(cafile)).expanduser()
                if not capath.is_absolute():
                    capath = base_dir / capath
            fp = rr.get("fingerprint")
            rest = RestEndpoint(rport, capath, str(fp) if fp else None)
    if transport == "rest" and rest is None:
        problems.append(f"{where}: transport rest needs rest: {{port: N}}")
    services = rn.get("services", [])
    if not isinstance(services, list) or not all(isinstance(s, str) and s.strip()
                                                  and _printable(s) for s in services):
        problems.append(f"{where}.services: expected a list of service names (one line each)")
        services = []
    include_ou = rn.get("include_ou", True)
    if not isinstance(include_ou, bool):
        problems.append(f"{where}.include_ou: expected true or false")
    if len(problems) > n0:
        return None
    return Node(name=name or "", role=Role(role), host=host or "", address=address or "",
                ssh_port=ssh_port, transport=transport or "ssh",
                credential=credential or DEFAULT_CREDENTIAL, web_ports=web_ports,
                rest=rest, services=tuple(services), include_ou=include_ou)
