"""A simulated site (UCCX publisher + subscriber + SocialMiner + SFTP COP repository) and a
server that runs any number of them in one event loop."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import logging
import os
import socket
import weakref
from pathlib import Path

import asyncssh
import yaml

from . import latency as _latency
from .faults import NODE_FAULTS, Faults
from .node import MockNode, NodeSpec, listen_or_move
from .store import atomic_write, contained, read_json, secret_file, write_json

log = logging.getLogger("cckit.vosmock")

DEFAULT_COP_FILES = {
    "uccx_disable": "ciscouccx.1151.ES01.ecdsa-disable.cop.sgn",
    "uccx_rollback": "ciscouccx.1151.ES01.ecdsa-rollback.cop.sgn",
    "socialminer_disable": "ciscosm.1151.ecdsa-disable.cop.sgn",
    "socialminer_rollback": "ciscosm.1151.ecdsa-rollback.cop.sgn",
}
NODE_SPECS = [
    # [doc] UCCX 11.5 port guide: 8443 platform Tomcat, 8445 Finesse, 8444 CUIC, 7443 the
    # Notification Service (Openfire), 12015 Socket.IO; SocialMiner's web application on 443
    # and its Openfire (chat and email) on 7443
    NodeSpec("uccx-pub", "uccx-publisher", "uccx1", (8443, 8445, 8444, 7443, 12015)),
    NodeSpec("uccx-sub", "uccx-subscriber", "uccx2", (8443, 8445, 8444, 7443, 12015)),
    NodeSpec("sm", "socialminer", "sm1", (443, 7443)),
]
# [doc] CUCM 11.5 TCP/UDP port usage: Cisco Tomcat serves the web pages on 8443; a
# publisher and a subscriber
CUCM_NODE_SPECS = [
    NodeSpec("cucm-pub", "cucm-publisher", "cucm1", (8443,)),
    NodeSpec("cucm-sub", "cucm-subscriber", "cucm2", (8443,)),
]
PRODUCT_NODE_SPECS = {"uccx": NODE_SPECS, "cucm": CUCM_NODE_SPECS}
COP_DIRECTORY = "/cop"
SFTP_MAX_BYTES = 64 * 1024 * 1024  # largest file the SFTP repository accepts (COPs are MBs)
SFTP_QUOTA_FILES = 4  # the whole repository holds at most this many such files' bytes
PORT_RETRIES = 20  # listeners moved to a new port at start, at most


def cop_bytes(key: str, name: str) -> bytes:
    product, _, action = key.partition("_")
    header = f"VOSMOCK-COP/1 product={product} action=ecdsa-{action} name={name}\n"
    body = b"".join(hashlib.sha256(f"{name}{i}".encode()).digest() for i in range(64))
    return header.encode() + b"This is a simulated Cisco COP file (cckit vosmock).\n" + body


def free_ports(n: int, exclude: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """`n` distinct free loopback ports (all held open together while chosen), none in
    `exclude`."""
    socks = []
    chosen: list[int] = []
    try:
        while len(chosen) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port not in exclude:
                chosen.append(port)
        return chosen
    finally:
        for s in socks:
            s.close()


# ports one site uses: per node SSH + web ports + REST, then SFTP and control
PORTS_PER_SITE = sum(2 + spec.n_web_ports for spec in NODE_SPECS) + 2


def base_port_map(base_port: int, specs: list[NodeSpec] = NODE_SPECS) -> dict:
    """The fixed layout from `base_port` (node i: SSH B+10i, web B+10i+1.., REST B+10i+9;
    SFTP B+30, control B+31)."""
    ports: dict = {"nodes": {}, "sftp": base_port + 30, "control": base_port + 31}
    for i, spec in enumerate(specs):
        b = base_port + 10 * i
        ports["nodes"][spec.name] = {
            "ssh": b,
            "web": [b + 1 + k for k in range(spec.n_web_ports)],
            "rest": b + 9,
        }
    return ports


def free_port_map(pool, specs: list[NodeSpec] = NODE_SPECS) -> dict:
    """A site's port assignment taken from the iterator `pool` (PORTS_PER_SITE ports)."""
    ports: dict = {"nodes": {}, "sftp": next(pool), "control": next(pool)}
    for spec in specs:
        ports["nodes"][spec.name] = {
            "ssh": next(pool),
            "web": [next(pool) for _ in range(spec.n_web_ports)],
            "rest": next(pool),
        }
    return ports


class _SftpAuth(asyncssh.SSHServer):
    def __init__(self, site: MockSite):
        self.site = site

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return hmac.compare_digest(
            f"{username}\0{password}".encode(),
            f"{self.site.sftp_username}\0{self.site.sftp_password}".encode(),
        )


class _CappedSFTP(asyncssh.SFTPServer):
    """The SFTP repository, chrooted, refusing writes past a per-file size and a quota."""

    def __init__(self, chan, site: MockSite):
        super().__init__(chan, chroot=str(site.sftp_root))
        self.site = site

    def write(self, file_obj, offset, data):
        cap = self.site.sftp_max_bytes
        if offset + len(data) > cap:
            raise asyncssh.SFTPFailure(f"file too large: the repository takes at most {cap} bytes")
        used = sum(p.stat().st_size for p in self.site.sftp_root.rglob("*") if p.is_file())
        if used + len(data) > cap * SFTP_QUOTA_FILES:
            raise asyncssh.SFTPFailure("repository full: delete files first")
        return super().write(file_obj, offset, data)


class MockSite:
    """One site. All methods run on the event loop that called `start()`."""

    def __init__(
        self,
        state_dir: str | os.PathLike,
        *,
        site: str = "vosmock",
        domain: str = "cc.example.com",
        version: str | None = None,
        base_port: int | None = None,
        control_port: int | None = None,
        control: bool = True,
        restart_seconds: float | None = None,
        lockout_failures: int = 5,
        lockout_seconds: float = 300.0,
        username: str = "admin",
        sftp_username: str = "copadmin",
        cop_files: dict[str, str] | None = None,
        include_ou_prompt: list[str] | None = None,
        org: str = "vosmock",
        ports: dict | None = None,
        product: str = "uccx",
        seed: str | list[str] | None = None,
        wizard: str | dict[str, str] | None = None,
        cli_startup_seconds: float | None = None,
        download_seconds: float | None = None,
        keyboard_interactive: bool | list[str] = False,
        sftp_max_bytes: int = SFTP_MAX_BYTES,
        latency: str | dict[str, float] | None = None,
        time_scale: float = 1.0,
        replication_seconds: float | None = None,
        finesse_ready_seconds: float | None = None,
    ):
        """`ports`: the port assignment to use when neither `base_port` nor a saved one
        applies (a multi-site server hands out distinct free ports; see multi.py).
        `product`: `uccx` (publisher, subscriber, SocialMiner) or `cucm` (publisher,
        subscriber). `seed`: certificate defects applied at first boot (seed.py).

        Real-node behaviour (README, "Options"): `wizard` the COP wizard variant of every node
        (a string) or per node ({name: variant}; default: by version and role);
        `cli_startup_seconds` from login to the first `admin:`; `download_seconds` of the
        `slow-download` wizard; `keyboard_interactive` (True or node names): SSH offers
        keyboard-interactive authentication only; `sftp_max_bytes` the largest file the SFTP
        repository accepts.

        `latency`: the latency profile (latency.py: None = instant CSRs and imports, "cisco"
        = a real node's durations, or a dict overriding entries of it); `time_scale`
        multiplies every duration (restarts and CLI start-up included). An explicit
        `restart_seconds` (a whole restart, stop plus start), `cli_startup_seconds` or
        `download_seconds` wins over the profile.

        `replication_seconds`: how long trust imported (or deleted) on a publisher takes to
        reach its subscribers (profile `trust_replication`; none: at once);
        `finesse_ready_seconds`: how long after Cisco Finesse Tomcat's TLS is up again
        Finesse's SystemInfo says IN_SERVICE (profile `finesse_ready`; none: at once). Both
        are time-scaled like the others; an explicit value wins over the profile.

        A UCCX or SocialMiner node at 11.6+ has no tomcat-ECDSA, as a real one (Cisco
        118855); no option brings it back (the mock is never easier than a real node)."""
        self.state_dir = Path(state_dir).resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        meta = read_json(self.state_dir / "site.json", {}) or {}
        self.name = meta.get("site", site)
        self.domain = meta.get("domain", domain)
        self.org = org
        self.product = meta.get("product", product)
        if self.product not in PRODUCT_NODE_SPECS:
            raise ValueError(f"unknown product {self.product!r} "
                             f"(use {', '.join(PRODUCT_NODE_SPECS)})")
        self.specs = PRODUCT_NODE_SPECS[self.product]
        self.username = meta.get("username", username)
        self.sftp_username = meta.get("sftp_username", sftp_username)
        self.cop_files = dict(meta.get("cop_files") or cop_files or DEFAULT_COP_FILES)
        self.latency = _latency.resolve(latency)
        self.profiled = bool(self.latency)  # a real node's durations (not instant)
        self.time_scale = float(time_scale)
        if restart_seconds is not None or not self.latency:
            rs = 5.0 if restart_seconds is None else float(restart_seconds)
            self.latency.update({k: rs for k in self.latency if k.startswith("restart")})
            self.latency["restart"] = rs
        self.restart_seconds = self.delay("restart")  # other services; Tomcat: restart_for()
        self.cli_startup_seconds = (float(cli_startup_seconds) * self.time_scale
                                    if cli_startup_seconds is not None else
                                    self.delay("cli_startup", 8.0))
        self.download_seconds = (float(download_seconds) * self.time_scale
                                 if download_seconds is not None else
                                 self.delay("cop_download", 30.0))
        self.replication_seconds = (float(replication_seconds) * self.time_scale
                                    if replication_seconds is not None else
                                    self.delay("trust_replication"))
        self.finesse_ready_seconds = (float(finesse_ready_seconds) * self.time_scale
                                      if finesse_ready_seconds is not None else
                                      self.delay("finesse_ready"))
        # replicated trust changes held by the replication_stalled fault: (node, change)
        self._held: list[tuple[MockNode, object]] = []
        self.sftp_max_bytes = int(sftp_max_bytes)
        self.lockout_failures = int(lockout_failures)
        self.lockout_seconds = float(lockout_seconds)
        self.faults = Faults()
        secrets_dir = self.state_dir / "secrets"
        secrets_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(secrets_dir, 0o700)
        self.password_file = secrets_dir / "os-admin.password"
        self.sftp_password_file = secrets_dir / "sftp.password"
        self.password = secret_file(self.password_file)
        self.sftp_password = secret_file(self.sftp_password_file)
        self.sftp_host_name = "127.0.0.1"
        self.nodes: dict[str, MockNode] = {}
        for spec in self.specs:
            node = MockNode(self, spec, contained(self.state_dir, "nodes", spec.name), version)
            if include_ou_prompt is not None:
                node.include_ou_prompt = spec.name in include_ou_prompt
                node.save()
            variant = wizard.get(spec.name) if isinstance(wizard, dict) else wizard
            if variant is not None:
                node.set_wizard(variant)
            node.keyboard_interactive = (
                keyboard_interactive is True
                or (isinstance(keyboard_interactive, list | tuple)
                    and spec.name in keyboard_interactive)
            )
            self.nodes[spec.name] = node
        if isinstance(wizard, dict) and set(wizard) - set(self.nodes):
            raise ValueError(f"wizard: unknown node(s) {sorted(set(wizard) - set(self.nodes))}")
        sftp_dir = self.state_dir / "sftp"
        hk = sftp_dir / "ssh_host_ed25519_key"
        if hk.exists():
            self.sftp_host_key = asyncssh.import_private_key(hk.read_bytes())
        else:
            self.sftp_host_key = asyncssh.generate_private_key("ssh-ed25519")
            atomic_write(hk, self.sftp_host_key.export_private_key(), mode=0o600)
        self.sftp_root = sftp_dir / "root"
        self.sftp_hidden = sftp_dir / "hidden"
        cop_dir = contained(self.sftp_root, COP_DIRECTORY.strip("/"))
        cop_dir.mkdir(parents=True, exist_ok=True)
        self.sftp_hidden.mkdir(parents=True, exist_ok=True)
        if not meta:
            for key, fname in self.cop_files.items():
                atomic_write(contained(cop_dir, fname), cop_bytes(key, fname))
        self.cop_dir = cop_dir
        self._assign_ports(meta.get("ports"), base_port, control_port, control, ports)
        self._fixed_ports = base_port is not None
        self._fixed_control = control_port is not None
        self._relocations = 0
        self.control_enabled = control
        self._save_meta()
        self._sftp_acceptor = None
        self._sftp_conns: weakref.WeakSet = weakref.WeakSet()
        self._control_runner = None
        self.started = False
        if seed and not meta:  # first boot only: seeded defects (seed.py)
            from .seed import apply_seed

            apply_seed(self, seed)
        elif (self.state_dir / "seed.json").exists():  # what a seed pinned survives restarts
            from .seed import keep_seed

            keep_seed(self)

    # ------------------------------------------------------------------ ports
    def delay(self, operation: str, default: float = 0.0) -> float:
        """Seconds ``operation`` takes on this site's nodes (the profile, time-scaled)."""
        return self.latency.get(operation, default) * self.time_scale

    def restart_for(self, service: str) -> float:
        """Seconds a restart of ``service`` takes, stop plus start."""
        return self.delay(f"restart:{service}", self.latency.get("restart", 5.0))

    def _assign_ports(self, saved, base_port, control_port, control, first_boot_ports) -> None:
        if base_port is not None:
            ports = base_port_map(base_port, self.specs)
            for node in self.nodes.values():
                if not node.has_rest:
                    ports["nodes"][node.name]["rest"] = None
        elif saved:
            ports = saved
        elif first_boot_ports:
            ports = first_boot_ports
        else:
            ports = free_port_map(iter(free_ports(PORTS_PER_SITE)), self.specs)
        if control_port is not None:
            ports["control"] = control_port
        self._add_web_ports(ports)
        for node in self.nodes.values():
            p = ports["nodes"][node.name]
            node.ssh_port = p["ssh"]
            node.web_ports = list(p["web"])
            if node.has_rest and not p.get("rest"):
                p["rest"] = free_ports(1)[0]
            node.rest_port = p["rest"] if node.has_rest else None
        self.ports = ports
        self.sftp_port = ports["sftp"]
        self.control_port = ports["control"]

    def _add_web_ports(self, ports: dict) -> None:
        """A state directory saved when a role served fewer web ports gets free ports for
        the new ones (the saved ones stay where they were)."""
        short = {n.name: n.spec.n_web_ports - len(ports["nodes"][n.name]["web"])
                 for n in self.nodes.values()}
        if not any(k > 0 for k in short.values()):
            return
        used = {ports["sftp"], ports["control"]}
        for p in ports["nodes"].values():
            used |= {p["ssh"], *p["web"], p.get("rest")}
        fresh = iter(free_ports(sum(k for k in short.values() if k > 0), exclude=used))
        for name, k in short.items():
            ports["nodes"][name]["web"] += [next(fresh) for _ in range(max(k, 0))]

    def _save_meta(self) -> None:
        write_json(
            self.state_dir / "site.json",
            {
                "site": self.name,
                "product": self.product,
                "domain": self.domain,
                "username": self.username,
                "sftp_username": self.sftp_username,
                "cop_files": self.cop_files,
                "ports": self.ports,
            },
        )

    def _all_ports(self) -> set[int]:
        out = {self.ports["sftp"], self.ports["control"]}
        for p in self.ports["nodes"].values():
            out |= {p["ssh"], *p["web"], p.get("rest")}
        return {x for x in out if x}

    def _relocate(self, node: MockNode | None, slot: tuple, port: int) -> int:
        """A free port for a listener whose port was taken when it started (another process,
        or another mock that picked the same free port at the same moment); saved in
        site.json. A fixed --base-port / --control-port layout fails instead."""
        fixed = self._fixed_control if slot == ("control",) else self._fixed_ports
        if fixed or self._relocations >= PORT_RETRIES:
            raise OSError(errno.EADDRINUSE, f"port {port} is already in use")
        self._relocations += 1
        new = free_ports(1, exclude=self._all_ports())[0]
        if node is None:
            self.ports[slot[0]] = new
            if slot[0] == "sftp":
                self.sftp_port = new
            else:
                self.control_port = new
        else:
            p = self.ports["nodes"][node.name]
            if slot[0] == "ssh":
                p["ssh"] = node.ssh_port = new
            elif slot[0] == "web":
                node.web_ports[slot[1]] = new
                p["web"] = list(node.web_ports)
            else:
                p["rest"] = node.rest_port = new
        self._save_meta()
        # handled (site.json has the new port): info, like the mock's other events, so an
        # embedded mock never writes into a runbook's cells (`cckit mock serve -v` shows it)
        log.info("%s: port %d was taken; %s moved to %d", self.name, port, slot[0], new)
        return new

    def publisher_download_settings(self) -> dict | None:
        """What the UCCX publisher's wizard remembers (12.5 subscribers may reuse it)."""
        pub = next((n for n in self.nodes.values() if n.role == "uccx-publisher"), None)
        return dict(pub.remembered) if pub is not None and pub.remembered else None

    # ------------------------------------------------------------------ behaviour
    def replicate(self, src: MockNode, fn) -> None:
        """Trust changes on a publisher replicate to its cluster's subscribers (not to
        SocialMiner) [doc: the procedure, "automatically replicated to the subscriber"],
        `replication_seconds` later [assumed timing: asynchronous on real clusters]; a
        subscriber with the `replication_stalled` fault gets them when it is cleared."""
        if not src.role.endswith("-publisher"):
            return
        for node in self.nodes.values():
            if node.role == src.role.replace("-publisher", "-subscriber"):
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # not on the loop (first boot): at once
                    loop = None
                if loop is None or (self.replication_seconds <= 0
                                    and not self.faults.node(node.name).replication_stalled):
                    fn(node)
                else:
                    loop.call_later(self.replication_seconds, self._arrive, node, fn)

    def _arrive(self, node: MockNode, fn) -> None:
        if self.faults.node(node.name).replication_stalled:
            self._held.append((node, fn))
        else:
            fn(node)

    def _release(self) -> None:
        """Replication resumes: what the stall held arrives."""
        held, self._held = self._held, []
        for node, fn in held:
            self._arrive(node, fn)

    async def set_fault(self, fault: str, value=True, node: str | None = None) -> None:
        if fault == "cop_missing":
            names = [value] if isinstance(value, str) else list(value or [])
            self.faults.cop_missing = names
            self._apply_cop_missing()
            return
        if fault not in NODE_FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        targets = [node] if node else list(self.nodes)
        for name in targets:
            if name not in self.nodes:
                raise ValueError(f"unknown node {name!r}")
            if fault == "down":
                await self.nodes[name].set_down(bool(value))
            elif fault == "slow_output":
                self.faults.node(name).slow_output = float(value or 0)
            else:
                setattr(self.faults.node(name), fault, bool(value))
        if fault == "replication_stalled" and not value:
            self._release()

    async def clear_faults(self) -> None:
        for name in self.nodes:
            if self.faults.node(name).down:
                await self.nodes[name].set_down(False)
        self.faults.nodes.clear()
        self.faults.cop_missing = []
        self._apply_cop_missing()
        self._release()

    def _apply_cop_missing(self) -> None:
        hidden = set(self.faults.cop_missing)
        for p in list(self.cop_dir.iterdir()):
            if "*" in hidden or p.name in hidden:
                os.replace(p, self.sftp_hidden / p.name)
        for p in list(self.sftp_hidden.iterdir()):
            if "*" not in hidden and p.name not in hidden:
                os.replace(p, self.cop_dir / p.name)

    def status(self) -> dict:
        return {
            "site": self.name,
            "site_dir": str(self.state_dir),
            "sftp_port": self.sftp_port,
            "control_port": self.control_port if self.control_enabled else None,
            "nodes": {
                n.name: {
                    "role": n.role,
                    "host": n.host,
                    "version": n.version,
                    "ssh_port": n.ssh_port,
                    "web_ports": n.web_ports,
                    "rest_port": n.rest_port,
                    "services": dict(n.services),
                    "running": n.running,
                    "locked": n.locked,
                    "ecdsa_offered": n.ecdsa_offered,
                    "cops": list(n.cops),
                    "trust_held": sum(node is n for node, _ in self._held),
                }
                for n in self.nodes.values()
            },
            "faults": self.faults.as_dict(),
        }

    # ------------------------------------------------------------------ lifecycle
    async def _listen(self, make, port: int, slot: tuple):
        return await listen_or_move(make, port, lambda old: self._relocate(None, slot, old))

    async def start(self) -> None:
        self._apply_cop_missing()
        self._sftp_acceptor = await self._listen(
            lambda port: asyncssh.listen(
                "127.0.0.1",
                port,
                server_factory=lambda: _SftpAuth(self),
                server_host_keys=[self.sftp_host_key],
                sftp_factory=lambda chan: _CappedSFTP(chan, self),
                allow_scp=False,
                reuse_address=True,
                acceptor=self._sftp_conns.add,
            ),
            self.sftp_port,
            ("sftp",),
        )
        for node in self.nodes.values():
            await node.start(self._relocate)
        if self.control_enabled:
            from aiohttp import web

            from .control import make_control_app

            self._control_runner = web.AppRunner(make_control_app(self), access_log=None)
            await self._control_runner.setup()
            await self._listen(
                lambda port: web.TCPSite(self._control_runner, "127.0.0.1", port).start(),
                self.control_port,
                ("control",),
            )
        self.started = True

    async def stop(self) -> None:
        self.started = False
        if self._control_runner is not None:
            await self._control_runner.cleanup()
            self._control_runner = None
        for node in self.nodes.values():
            await node.stop()
        if self._sftp_acceptor is not None:
            self._sftp_acceptor.close()
            await self._sftp_acceptor.wait_closed()
            self._sftp_acceptor = None
        for conn in list(self._sftp_conns):
            conn.abort()
        self._sftp_conns.clear()
        # let aborted connections finish their callbacks
        await asyncio.sleep(0)

    # ------------------------------------------------------------------ site file
    def known_hosts_text(self) -> str:
        lines = []
        for node in self.nodes.values():
            key = node.host_key.export_public_key("openssh").decode().split()
            lines.append(f"[127.0.0.1]:{node.ssh_port} {key[0]} {key[1]}")
        key = self.sftp_host_key.export_public_key("openssh").decode().split()
        lines.append(f"[127.0.0.1]:{self.sftp_port} {key[0]} {key[1]}")
        return "\n".join(lines) + "\n"

    def site_document(self, known_hosts: str) -> dict:
        nodes = []
        for node in self.nodes.values():
            entry = {
                "name": node.name,
                "role": node.role,
                "host": node.host,
                "address": "127.0.0.1",
                "ssh_port": node.ssh_port,
                "transport": "ssh",
                "credential": "os-admin",
                # the real port each listener stands for -> where it listens here
                "web_ports": dict(zip(node.spec.web, node.web_ports, strict=True)),
            }
            if node.rest_port:
                entry["rest"] = {"port": node.rest_port}
            nodes.append(entry)
        return {
            "site": self.name,
            "domain": self.domain,
            "credentials": {
                "os-admin": {
                    "username": self.username,
                    "password": {"file": str(self.password_file)},
                },
                "sftp": {
                    "username": self.sftp_username,
                    "password": {"file": str(self.sftp_password_file)},
                },
            },
            "known_hosts": known_hosts,
            "nodes": nodes,
            "cop_repository": {
                "host": "127.0.0.1",
                "port": self.sftp_port,
                "directory": COP_DIRECTORY,
                "credential": "sftp",
            },
            "cop_files": dict(self.cop_files),
        }

    def write_site_file(self, path: str | os.PathLike) -> Path:
        path = Path(path).resolve()
        kh = path.with_name(f"{path.stem}.known_hosts")
        atomic_write(kh, self.known_hosts_text())
        header = f"# Written by the cckit VOS mock (state: {self.state_dir}).\n" + (
            f"# Control endpoint: http://127.0.0.1:{self.control_port}/status\n"
            if self.control_enabled
            else ""
        )
        body = yaml.safe_dump(self.site_document(kh.name), sort_keys=False, default_flow_style=None)
        atomic_write(path, header + body)
        return path


class MockServer:
    """Runs many sites in one event loop (one state directory per site; see multi.py)."""

    def __init__(self, sites: list[MockSite]):
        self.sites = sites

    def site(self, name: str) -> MockSite:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(f"unknown site {name!r}")

    async def start(self) -> None:
        """Start every site; if one cannot start, stop the ones already started and raise."""
        try:
            for s in self.sites:
                await s.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for s in self.sites:
            await s.stop()
