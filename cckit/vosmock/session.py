"""The interactive VOS CLI (`admin:` prompt) served over SSH by each mock node."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
import logging
import posixpath

import asyncssh

from . import journal, pki
from .node import CommandError, MockNode

log = logging.getLogger("cckit.vosmock")

PROMPT = "admin:"
FAILED = "Executed command unsuccessfully"
MAX_LINE = 4096
MAX_PASTE_LINES = 400
_EOF = object()
_CANCEL = object()


class _Eof(Exception):
    pass


class _Cancelled(Exception):
    pass


class _Dropped(Exception):
    pass


class _SSHServer(asyncssh.SSHServer):
    def __init__(self, node: MockNode):
        self.node = node
        self.conn = None

    def connection_made(self, conn) -> None:
        self.conn = conn
        self.node._ssh_conns.add(conn)

    def connection_lost(self, exc) -> None:
        self.node._ssh_conns.discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return False

    def validate_password(self, username: str, password: str) -> bool:
        return self.node.check_password(username, password)

    def session_requested(self):
        return VosSession(self.node, self.conn)


def make_ssh_server(node: MockNode) -> asyncssh.SSHServer:
    return _SSHServer(node)


class VosSession(asyncssh.SSHServerSession):
    def __init__(self, node: MockNode, conn):
        self.node = node
        self.conn = conn
        self.chan = None
        self.pty = False
        self.echo = True
        self.exec_command: str | None = None
        self._partial = ""
        self._last_cr = False
        self._esc = 0
        self._queue: asyncio.Queue = asyncio.Queue()
        self._discard = False
        self.discarded = 0

    # ---------------------------------------------------------------- asyncssh callbacks
    def connection_made(self, chan) -> None:
        self.chan = chan

    def pty_requested(self, term_type, term_size, term_modes) -> bool:
        self.pty = True
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self.exec_command = command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        return False

    def session_started(self) -> None:
        self.node.spawn(self._run())

    def eof_received(self) -> bool:
        self._queue.put_nowait(_EOF)
        return True  # stay half-open: finish the output, then close

    def connection_lost(self, exc) -> None:
        self._queue.put_nowait(_EOF)

    def break_received(self, msec: int) -> bool:
        return True

    def signal_received(self, signal: str) -> None:
        pass

    def data_received(self, data: str, datatype) -> None:
        for ch in data:
            self._char(ch)

    # ---------------------------------------------------------------- terminal input
    def _char(self, ch: str) -> None:
        if self._esc == 1:  # after ESC: a CSI/SS3 sequence or a single char, all dropped
            self._esc = 2 if ch in "[O" else 0
            return
        if self._esc == 2:
            if "\x40" <= ch <= "\x7e":
                self._esc = 0
            return
        if ch in "\r\n":
            if ch == "\n" and self._last_cr:
                self._last_cr = False
                return
            self._last_cr = ch == "\r"
            line, self._partial = self._partial, ""
            self._echo_out("\r\n")
            self._push(line)
            return
        self._last_cr = False
        if ch in "\x7f\x08":
            if self._partial:
                self._partial = self._partial[:-1]
                self._echo_out("\b \b")
        elif ch == "\x15":  # Ctrl-U
            self._echo_out("\b \b" * len(self._partial))
            self._partial = ""
        elif ch == "\x03":  # Ctrl-C: drop the line / cancel the running prompt
            self._partial = ""
            self._echo_out("^C\r\n")
            self._push(_CANCEL)
        elif ch == "\x04":  # Ctrl-D on an empty line: end of input
            if not self._partial:
                self._queue.put_nowait(_EOF)
        elif ch == "\x1b":
            self._esc = 1
        elif ch == "\t" or ch.isprintable():
            if len(self._partial) < MAX_LINE:
                ch = " " if ch == "\t" else ch
                self._partial += ch
                self._echo_out(ch)
        # every other control character is dropped

    def _echo_out(self, text: str) -> None:
        if self.pty and self.echo:
            self._write(text)

    def _push(self, item) -> None:
        if self._discard and item is not _EOF:
            self.discarded += 1
            return
        self._queue.put_nowait(item)

    def _write(self, text: str) -> None:
        try:
            if self.chan is not None and not self.chan.is_closing():
                self.chan.write(text)
        except (OSError, asyncssh.Error):  # pragma: no cover - peer went away
            pass

    async def out(self, *lines: str) -> None:
        delay = self.node.faults.slow_output
        nl = "\r\n" if self.pty else "\n"
        for line in lines:
            if delay:
                await asyncio.sleep(delay)
            self._write(line + nl)

    async def readline(self, prompt: str | None = None, echo: bool = True) -> str:
        if prompt is not None:
            self._write(prompt.replace("\n", "\r\n" if self.pty else "\n"))
        self.echo = echo
        try:
            item = await self._queue.get()
        finally:
            self.echo = True
        if item is _EOF:
            self._queue.put_nowait(_EOF)
            raise _Eof
        if item is _CANCEL:
            raise _Cancelled
        if not echo and self.pty:
            self._write("\r\n")
        return item

    async def read_paste(self) -> bytes:
        """Read a pasted PEM up to its END CERTIFICATE line; discard whatever follows it."""
        await self.out("Paste the Certificate and Hit Enter")
        lines: list[str] = []
        while True:
            line = await self.readline()
            if "-----END CERTIFICATE-----" in line:
                lines.append(line[: line.index("-----END CERTIFICATE-----") + 25])
                break
            lines.append(line)
            if len(lines) > MAX_PASTE_LINES:
                raise CommandError("Error: the pasted certificate is too long.")
        # Anything pasted after the END CERTIFICATE line (already queued, or arriving before
        # this command finishes) is discarded: it can never run as a command.
        self._discard = True
        keep_eof = False
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is _EOF:
                keep_eof = True
            else:
                self.discarded += 1
        if keep_eof:
            self._queue.put_nowait(_EOF)
        return ("\n".join(lines) + "\n").encode()

    async def ask_yes_no(self, prompt: str) -> bool:
        while True:
            ans = (await self.readline(prompt)).strip().lower()
            if ans in ("yes", "y"):
                return True
            if ans in ("no", "n"):
                return False

    # ---------------------------------------------------------------- main loop
    async def _run(self) -> None:
        try:
            if self.exec_command is not None:
                await self._one(self.exec_command)
                return
            await self.out(
                "Command Line Interface is starting up, please wait ...",
                "",
                "   Welcome to the Platform Command Line Interface",
                "",
            )
            while True:
                if self._discard:
                    if self.discarded:
                        log.info("%s: discarded %d pasted line(s)", self.node.name, self.discarded)
                    self._discard = False
                try:
                    line = (await self.readline(PROMPT)).strip()
                except _Cancelled:
                    continue
                if not line:
                    continue
                if line.lower() in ("quit", "exit"):
                    break
                await self._one(line)
        except (_Eof, _Dropped):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:  # pragma: no cover - a bug in the mock must not hang the client
            log.exception("%s: CLI session crashed", self.node.name)
        finally:
            try:
                if self.chan is not None and not self.chan.is_closing():
                    self.chan.exit(0)
            except (OSError, asyncssh.Error):  # pragma: no cover
                pass

    async def _one(self, line: str) -> None:
        try:
            await self.execute(line)
        except CommandError as exc:
            await self.out(*exc.lines, FAILED)
        except _Cancelled:
            await self.out("")

    async def execute(self, line: str) -> None:
        journal.record(self.node, line, "exec" if self.exec_command is not None else "cli")
        words = line.split()
        low = [w.lower() for w in words]
        n = self.node

        def is_(*prefix: str) -> bool:
            return tuple(low[: len(prefix)]) == prefix

        if is_("show", "version", "active") and len(low) == 3:
            await self.out(
                f"Active Master Version: {n.version}", "Active Version Installed Software Options:"
            )
            await self.out(*(n.cops or ["No Installed Software Options Found."]))
        elif is_("show", "cert", "list") and len(low) == 4 and low[3] in ("own", "trust"):
            await self.out(*self._cert_list(low[3]))
        elif is_("show", "cert") and len(low) == 4 and low[2] in ("own", "trust"):
            cert = self._lookup_cert(low[2], words[3])
            await self.out(*pki.describe(cert), *pki.cert_pem(cert).decode().splitlines())
        elif is_("set", "csr", "gen") and len(low) == 4:
            await self._csr_gen(self._unit(words[3]))
        elif is_("show", "csr", "list", "own") and len(low) == 4:
            await self.out(*(f"{u}/{u}.csr" for u in n.csr_units()))
        elif is_("show", "csr", "own") and len(low) == 4:
            unit = self._unit(words[3].split("/")[0])
            pending = n.csr(unit)
            if pending is None or words[3] not in (unit, f"{unit}/{unit}.csr"):
                raise CommandError(f"Error: CSR file {words[3]} not found.")
            await self.out(*pending[0].decode().splitlines())
        elif is_("set", "cert", "import", "trust") and len(low) == 5:
            await self._import_trust(words[4])
        elif is_("set", "cert", "import", "own") and len(low) == 6:
            await self._import_own(self._unit(words[4]), words[5])
        elif is_("set", "cert", "regen") and len(low) == 4:
            await self._regen(self._unit(words[3]))
        elif is_("set", "cert", "delete", "trust") and len(low) == 5:
            fname = self._trust_name(words[4])
            n.delete_trust(fname)
            await self.out(f"Successfully deleted certificate tomcat-trust/{fname}.")
        elif is_("utils", "service", "list") and len(low) == 3:
            await self.out("Requesting service status, please wait...")
            await self.out(*(f"{s}[{st}]" for s, st in n.services.items()))
            if n.product == "uccx":
                await self.out(f"Primary Node ={str(n.role == 'uccx-publisher').lower()}")
        elif is_("utils", "service", "restart") and len(low) > 3:
            await self._service_restart(" ".join(words[3:]))
        elif is_("utils", "system", "restart") and len(low) == 3:
            await self._system_restart()
        elif is_("utils", "system", "upgrade", "initiate") and len(low) == 4:
            await self._upgrade()
        elif is_("show", "tls", "server", "cert_type") and len(low) == 4 and n.has_tls_cert_type:
            await self.out(f"TLS server certificate type: {n.tls_cert_type['stored']}")
        elif is_("set", "tls", "server", "cert_type") and len(low) == 5 and n.has_tls_cert_type:
            if low[4] not in ("rsa", "ecdsa"):
                raise CommandError("Error: cert_type must be rsa or ecdsa.")
            n.tls_cert_type["stored"] = low[4]
            n.save()
            await self.out(
                f"Successfully set TLS server certificate type to {low[4]}.",
                "Restart Cisco Tomcat for the change to take effect.",
            )
        else:
            raise CommandError(f"Invalid command: {line}")

    # ---------------------------------------------------------------- helpers
    def _unit(self, text: str) -> str:
        unit = pki.canonical_unit(text)
        if unit is None:
            raise CommandError(f"Error: invalid unit {text}: use tomcat or tomcat-ECDSA.")
        return unit

    def _trust_name(self, text: str) -> str:
        name = text[len("tomcat-trust/") :] if text.lower().startswith("tomcat-trust/") else text
        if name not in self.node.trust():
            raise CommandError(f"Error: certificate file {text} not found.")
        return name

    def _lookup_cert(self, store: str, text: str):
        if store == "trust":
            return pki.load_cert(self.node.trust()[self._trust_name(text)])
        unit = pki.canonical_unit(text.split("/")[0])
        if unit is None or text not in (unit, f"{unit}/{unit}.pem"):
            raise CommandError(f"Error: certificate file {text} not found.")
        return self.node.own_cert(unit)

    def _cert_list(self, store: str) -> list[str]:
        def desc(cert) -> str:
            if pki.is_self_signed(cert):
                return (
                    "Self-signed certificate generated by system"
                    if store == "own"
                    else ("Trust Certificate")
                )
            return f"Certificate Signed by {pki.cn_of(cert.issuer)}"

        if store == "own":
            return [f"{u}/{u}.pem: {desc(self.node.own_cert(u))}" for u in pki.UNITS]
        return [
            f"tomcat-trust/{f}: {desc(pki.load_cert(pem))}" for f, pem in self.node.trust().items()
        ]

    async def _csr_gen(self, unit: str) -> None:
        include_ou = False
        if self.node.include_ou_prompt:
            include_ou = await self.ask_yes_no("Include OU in CSR (yes|no)? ")
        await self.node.gen_csr(unit, include_ou)
        await self.out(f"Successfully Generated CSR for {unit}.")

    def _maybe_drop(self) -> None:
        if self.node.faults.drop_import:
            self.node.faults.drop_import = False  # one-shot
            log.info("%s: fault drop_import fired", self.node.name)
            self.conn.abort()
            raise _Dropped

    async def _import_trust(self, unit_text: str) -> None:
        if unit_text.lower() not in ("tomcat", "tomcat-trust"):
            raise CommandError(f"Error: invalid unit {unit_text}: use tomcat.")
        pem = await self.read_paste()
        self._maybe_drop()
        cert = self.node.parse_cert(pem)
        self.node.import_trust(cert)
        await self.out(
            "Successfully imported certificate for tomcat.",
            "Please restart services related to tomcat for the new certificate to become active.",
        )

    async def _import_own(self, unit: str, cafile: str) -> None:
        self._trust_name(cafile)  # the named CA file must be in tomcat-trust
        pem = await self.read_paste()
        self._maybe_drop()
        cert = self.node.parse_cert(pem)
        self.node.import_own(unit, cert)
        await self.out(
            f"Successfully imported certificate for {unit}.",
            f"Please restart services related to {unit} for the new certificate to become active.",
        )

    async def _regen(self, unit: str) -> None:
        await self.out(
            f"WARNING: This operation will overwrite any CA signed certificate previously "
            f"imported for {unit}"
        )
        if not await self.ask_yes_no("Proceed with regeneration (yes|no)? "):
            await self.out("Regeneration of certificate canceled.")
            return
        await self.node.regen(unit)
        await self.out(
            f"Successfully Regenerated Certificate for {unit}.",
            f"You must restart services related to {unit} for the regenerated certificates "
            "to become active.",
        )

    async def _service_restart(self, name: str) -> None:
        service = next((s for s in self.node.services if s.lower() == name.lower()), None)
        if service is None:
            raise CommandError(f"Service not found: {name}")
        await self.out(
            "Do not press Ctrl+C while the service is restarting. If the service has not "
            "restarted properly, execute the same command again.",
            "Service Manager is running",
        )
        if service == "Cisco Tomcat":
            await asyncio.shield(self.node.restart_tomcat(self._emit))
        else:
            await asyncio.shield(self.node.restart_other(service, self._emit))

    async def _emit(self, line: str) -> None:
        await self.out(line)

    async def _system_restart(self) -> None:
        await self.out("")
        if not await self.ask_yes_no("Do you really want to restart ?\nEnter (yes/no)? "):
            await self.out("Restart canceled.")
            return
        await self.out(
            "", "Appliance is being Restarted ...", "Warning: Restart could take up to 5 minutes."
        )
        self.node.spawn(self.node.system_restart())
        raise _Dropped  # the node goes away; the session ends with it

    # ---------------------------------------------------------------- COP wizard
    async def _upgrade(self) -> None:
        n = self.node
        await self.out(
            "",
            "Warning: Do not close this window without first canceling the upgrade.",
            "",
            "Source:",
            "",
            "1) Remote Filesystem via SFTP",
            "2) Remote Filesystem via FTP",
            "3) Local DVD/CD",
            "q) quit",
            "",
        )
        while True:
            sel = (await self.readline('Please select an option (1 - 3 or "q" ): ')).strip().lower()
            if sel == "q":
                await self.out("Upgrade canceled.")
                return
            if sel == "1":
                break
            if sel in ("2", "3"):
                raise CommandError("Error: this source is not available (only SFTP is simulated).")
        await self.out("")
        directory = (await self.readline("Directory: ")).strip()
        server = (await self.readline("Server: ")).strip()
        user = (await self.readline("User Name: ")).strip()
        password = await self.readline("Password: ", echo=False)
        await self.out("")
        await self.readline("Please enter SMTP Host Server (optional): ")
        await self.out("Checking for valid upgrades. Please wait...")
        host, port = self._sftp_target(server)
        try:
            conn = await asyncio.wait_for(
                asyncssh.connect(
                    host,
                    port,
                    username=user,
                    password=password,
                    known_hosts=None,
                    client_keys=None,
                    agent_path=None,
                    preferred_auth="password",
                ),
                15,
            )
        except (TimeoutError, OSError, asyncssh.Error):
            raise CommandError(
                f"Error: could not log in to the SFTP server {server} as {user}."
            ) from None
        async with conn:
            async with conn.start_sftp_client() as sftp:
                try:
                    names = await sftp.listdir(directory or ".")
                except (OSError, asyncssh.Error):
                    raise CommandError(
                        f"Error: directory {directory} not found on {server}."
                    ) from None
                cops = sorted(x for x in names if x.endswith(".cop.sgn"))
                if not cops:
                    raise CommandError(
                        "There were no valid upgrades found in the directory specified."
                    )
                await self.out("", f'Available options and upgrades in "{server}:{directory}":', "")
                await self.out(*(f"{i}) {c}" for i, c in enumerate(cops, 1)), "q) quit", "")
                while True:
                    sel = (
                        (
                            await self.readline(
                                f'Please select an option (1 - {len(cops)} or "q" ): '
                            )
                        )
                        .strip()
                        .lower()
                    )
                    if sel == "q":
                        await self.out("Upgrade canceled.")
                        return
                    if sel.isdigit() and 1 <= int(sel) <= len(cops):
                        fname = cops[int(sel) - 1]
                        break
                await self.out("", "Accessing the file. Please wait...")
                try:
                    async with sftp.open(posixpath.join(directory or ".", fname), "rb") as fh:
                        data = await fh.read()
                except (OSError, asyncssh.Error):
                    raise CommandError(f"Error: could not download {fname}.") from None
        await self.out("Validating the file...")
        if fname in n.cops:
            raise CommandError(f"Error: {fname} is already installed.")
        if not data.startswith(b"VOSMOCK-COP/1"):
            raise CommandError(f"Error: {fname} is not a valid COP file (signature check failed).")
        await self.out(
            f"Downloaded: {fname}",
            f"File version: {n.version}",
            f"File checksum: {hashlib.md5(data).hexdigest()}",  # noqa: S324 - what VOS shows
            "",
        )
        if not await self.ask_yes_no("Start installation (yes/no): "):
            await self.out("The upgrade was canceled.")
            return
        stamp = dt.datetime.now().strftime("%Y-%m-%d.%H.%M.%S")
        await self.out(
            f"The upgrade log is install_log_{stamp}.log", "Upgrading the system.  Please wait..."
        )
        n.install_cop(fname, data)
        await self.out(
            f"Successfully installed {fname}",
            "",
            "Restart Cisco Tomcat (utils service restart Cisco Tomcat) or the system "
            "(utils system restart) for the change to take effect.",
        )

    def _sftp_target(self, server: str) -> tuple[str, int]:
        host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
        host = host or server
        try:
            port_n = int(port) if port else self.node.site.sftp_port
        except ValueError:
            raise CommandError(f"Error: invalid server {server}.") from None
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host in ("localhost", self.node.site.sftp_host_name)
        if not loopback:  # [assumed] the mock only ever reaches out to loopback
            raise CommandError(f"Error: could not log in to the SFTP server {server}.")
        return host, port_n
