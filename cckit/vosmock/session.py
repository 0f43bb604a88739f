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
MAX_LINE = 4096
MAX_PASTE_LINES = 400
DEFAULT_ROWS = 24  # terminal height when the client's pty request gives none
# [doc] unicon.plugins vos/patterns.py (press_enter_space_q) and mock_data/vos/vos_mock_data.yaml
PAGER = "\x1b[1mPress <enter> for 1 line, <space> for one page, or <q> to quit\x1b[0m"
ERASE_LINE = "\r\x1b[K"  # [doc] unicon vos prompt pattern `([\r\n]|\x1b\[K)admin:`
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
        accept_repeated_userauth_requests(conn)

    def connection_lost(self, exc) -> None:
        self.node._ssh_conns.discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return not self.node.keyboard_interactive

    def kbdint_auth_supported(self) -> bool:
        return self.node.keyboard_interactive

    def get_kbdint_challenge(self, username: str, lang: str, submethods: str):
        # [assumed] PAM through OpenSSH: one "Password: " prompt, not echoed
        return "", "", "", [("Password: ", False)]

    def validate_kbdint_response(self, username: str, responses) -> bool:
        return len(responses) == 1 and self.node.check_password(username, responses[0])

    def public_key_auth_supported(self) -> bool:
        return False

    def validate_password(self, username: str, password: str) -> bool:
        return self.node.check_password(username, password)

    def session_requested(self):
        return VosSession(self.node, self.conn)


def accept_repeated_userauth_requests(conn) -> None:
    """[assumed] VOS runs OpenSSH's sshd, which answers every `ssh-userauth` service request
    until a login succeeds; paramiko sends one per authentication method it tries (e.g. its
    password -> keyboard-interactive fallback). asyncssh accepts only the first: re-arm it
    for this connection (asyncssh internals; without them the mock just stays stricter)."""
    try:
        from asyncssh.constants import MSG_SERVICE_REQUEST

        handlers = dict(type(conn)._packet_handlers)
        first = handlers[MSG_SERVICE_REQUEST]
    except (ImportError, AttributeError, KeyError):  # pragma: no cover - another asyncssh
        return

    def service_request(c, pkttype, pktid, packet):
        if getattr(c, "_next_service", b"") is None and not getattr(c, "_auth_complete", True):
            c._next_service = b"ssh-userauth"
        return first(c, pkttype, pktid, packet)

    handlers[MSG_SERVICE_REQUEST] = service_request
    conn._packet_handlers = handlers


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
        #: echo collected while one received chunk is read (None: write at once)
        self._echo_buf: list[str] | None = None
        self._last_cr = False
        self._esc = 0
        self._queue: asyncio.Queue = asyncio.Queue()
        self.rows = DEFAULT_ROWS
        self.pagination = True  # [doc] paging is on for a new CLI session
        self._page_lines = 0  # lines shown since the user last typed something
        self._quit_output = False  # `q` at the pager: the rest of this output is not shown
        self._key: asyncio.Future | None = None  # the pager waiting for one keystroke
        self.in_upgrade = False  # inside the COP wizard, past the source menu

    # ---------------------------------------------------------------- asyncssh callbacks
    def connection_made(self, chan) -> None:
        self.chan = chan

    def pty_requested(self, term_type, term_size, term_modes) -> bool:
        self.pty = True
        self.rows = (term_size[1] if term_size and len(term_size) > 1 else 0) or DEFAULT_ROWS
        return True

    def terminal_size_changed(self, width, height, pixwidth, pixheight) -> None:
        self.rows = height or DEFAULT_ROWS

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
        self._key_eof()
        return True  # stay half-open: finish the output, then close

    def connection_lost(self, exc) -> None:
        self._queue.put_nowait(_EOF)
        self._key_eof()
        if self.in_upgrade:  # [doc] the wizard warns not to close the window: it stays open
            self.node.upgrade_open = True

    def _key_eof(self) -> None:
        if self._key is not None and not self._key.done():
            self._key.set_exception(_Eof())

    def break_received(self, msec: int) -> bool:
        return True

    def signal_received(self, signal: str) -> None:
        pass

    def data_received(self, data: str, datatype) -> None:
        # The echo of what arrived together leaves together, as sshd sends a pty's output in
        # whatever chunks it reads [assumed]: one write per received chunk, not one SSH
        # packet per character (a pasted certificate was ~1,700 packets each way). The bytes
        # and their order are the same; nothing else writes while a chunk is read (commands
        # and the pager answer from their own tasks).
        self._echo_buf = []
        try:
            for ch in data:
                self._char(ch)
        finally:
            echoed, self._echo_buf = "".join(self._echo_buf), None
            if echoed:
                self._write(echoed)

    # ---------------------------------------------------------------- terminal input
    def _char(self, ch: str) -> None:
        if self._key is not None and not self._key.done():  # the pager takes one key, unechoed
            self._last_cr = ch == "\r"
            self._key.set_result(ch)
            return
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
            if self._echo_buf is not None:
                self._echo_buf.append(text)
            else:
                self._write(text)

    def _push(self, item) -> None:
        self._queue.put_nowait(item)

    def _write(self, text: str) -> None:
        try:
            if self.chan is not None and not self.chan.is_closing():
                self.chan.write(text)
        except (OSError, asyncssh.Error):  # pragma: no cover - peer went away
            pass

    @property
    def paging(self) -> bool:
        return self.pty and self.pagination and self.exec_command is None

    async def out(self, *lines: str) -> None:
        delay = self.node.faults.slow_output
        nl = "\r\n" if self.pty else "\n"
        for line in lines:
            if self._quit_output:
                continue
            if delay:
                await asyncio.sleep(delay)
            if self.paging and self._page_lines >= self.rows - 1:
                await self._pager()
                if self._quit_output:
                    continue
            self._write(line + nl)
            self._page_lines += 1

    async def _pager(self) -> None:
        """[doc] More than a screen of output stops at the pager until a key: space shows one
        more page, Enter one more line, q ends the output; the pager line is then erased."""
        self._write(PAGER)
        while True:
            self._key = asyncio.get_running_loop().create_future()
            try:
                key = await self._key
            finally:
                self._key = None
            if key == " ":
                self._page_lines = 0
            elif key in "\r\n":
                self._page_lines = self.rows - 2
            elif key in "qQ":
                self._quit_output = True
            else:
                continue  # [assumed] other keys are ignored
            self._write(ERASE_LINE)
            return

    async def readline(self, prompt: str | None = None, echo: bool = True) -> str:
        if prompt is not None:
            self._write(prompt.replace("\n", "\r\n" if self.pty else "\n"))
        self._page_lines = 0  # the user is typing: a new screen starts
        self._quit_output = False
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
        """[doc] Read a pasted PEM up to its END CERTIFICATE line. What follows that line is the
        next command line, as on a real node. A paste longer than MAX_PASTE_LINES is still
        read (and dropped) up to its END line, then refused: none of it runs as a command."""
        await self.out("Paste the Certificate and Hit Enter")
        lines: list[str] = []
        too_long = False
        while True:
            line = await self.readline()
            if "-----END CERTIFICATE-----" in line:
                # [assumed] text after the marker on the END line is dropped
                lines.append(line[: line.index("-----END CERTIFICATE-----") + 25])
                break
            if too_long:
                continue
            lines.append(line)
            if len(lines) > MAX_PASTE_LINES:
                too_long = True
                lines = []
        if too_long:
            raise CommandError("Error: the pasted certificate is too long.")
        return ("\n".join(lines) + "\n").encode()

    async def ask_yes_no(self, prompt: str, default: bool | None = None) -> bool:
        while True:
            ans = (await self.readline(prompt)).strip().lower()
            if ans in ("yes", "y"):
                return True
            if ans in ("no", "n"):
                return False
            if not ans and default is not None:
                return default

    # ---------------------------------------------------------------- main loop
    async def _run(self) -> None:
        try:
            if self.exec_command is not None:
                await self._one(self.exec_command)
                return
            # [doc] ponchotitlan/ansible_cucm_cop_file_installer, library/README.md: 8 s from
            # login to the first admin: on a real 11.5 node (up to a minute on busy ones)
            wait = self.node.site.cli_startup_seconds
            await self.out("Command Line Interface is starting up, please wait ...", "")
            await asyncio.sleep(wait * 0.7)
            await self.out("   Welcome to the Platform Command Line Interface", "")
            await asyncio.sleep(wait * 0.2)
            await self.out(
                "VMware Installation:",
                "        2 vCPU: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz",
                "        Disk 1: 146GB, Partitions aligned",
                "        8192 Mbytes RAM",
                "",
            )
            await asyncio.sleep(wait * 0.1)
            while True:
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
        self._page_lines = 0
        self._quit_output = False
        try:
            await self.execute(line)
        except CommandError as exc:
            await self.out(*exc.lines, self.node.failed_text)
        except _Cancelled:
            await self.out("")
        finally:
            self._quit_output = False

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
            # [doc] installed COPs are listed without the .sgn of the signed file
            # (ponchotitlan/ansible_cucm_cop_file_installer: `cmterm-devicepack...-1.cop`)
            listed = [c[: -len(".sgn")] if c.endswith(".sgn") else c for c in n.cops]
            await self.out(*(listed or ["No Installed Software Options Found."]))
        elif is_("set", "cli", "pagination") and len(low) == 4 and low[3] in ("on", "off"):
            # [doc] CLI reference 12.5(1)SU2: for the current CLI session only
            self.pagination = low[3] == "on"
            await self.out(f"Automatic pagination is turned {low[3]}")
        elif is_("show", "cert", "list") and len(low) == 4 and low[3] in ("own", "trust"):
            await self.out(*self._cert_list(low[3]))
        elif is_("show", "cert") and len(low) == 4 and low[2] in ("own", "trust"):
            cert = self._lookup_cert(low[2], words[3])
            await self.out(*pki.describe(cert), *pki.cert_pem(cert).decode().splitlines())
        elif is_("set", "csr", "gen") and len(low) == 4:
            await self._csr_gen(self._unit(words[3]))
        elif is_("set", "csr", "gen", "multi-server") and len(low) == 5 and n.has_multi_san:
            if self._unit(words[4]) != "tomcat":  # [assumed] tomcat only (Cisco 118731)
                raise CommandError("Error: a multi-server CSR is for tomcat only.")
            await self._csr_gen("tomcat", multi=True)
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
            await self.out(*n.service_list())
        elif is_("utils", "service", "restart") and len(low) > 3:
            await self._service_restart(" ".join(words[3:]))
        elif is_("utils", "system", "restart") and len(low) == 3:
            await self._system_restart()
        elif is_("utils", "system", "upgrade", "initiate") and len(low) == 4:
            await self._upgrade()
        elif is_("utils", "system", "upgrade", "cancel") and len(low) == 4:
            # [doc] public tools run it before initiate; [assumed] its wording
            if n.upgrade_open:
                n.upgrade_open = False
                await self.out("Canceling the upgrade. Please wait...", "Upgrade canceled.")
            else:
                await self.out("There is no upgrade in progress.")
        elif is_("show", "tls", "server", "cert_type") and len(low) == 4 and n.has_tls_cert_type:
            # [doc] UCCX 15.0 Administration and Operations Guide, "show tls server cert_type"
            kind = n.tls_cert_type["stored"].upper()
            await self.out(f"The server certificate type is set to {kind}", "",
                           "Command successful")
        elif is_("set", "tls", "server", "cert_type") and len(low) == 5 and n.has_tls_cert_type:
            if low[4] not in ("rsa", "ecdsa"):
                raise CommandError("Error: cert_type must be rsa or ecdsa.")  # [assumed]
            await self._set_tls_cert_type(low[4])
        else:
            raise CommandError(f"Invalid command: {line}")

    # ---------------------------------------------------------------- helpers
    def _unit(self, text: str) -> str:
        unit = self.node.unit(text)
        if unit is None:  # [assumed] wording; a UCCX/SM 11.6+ node has no tomcat-ECDSA
            raise CommandError(f"Error: invalid unit {text}: use {' or '.join(self.node.units)}.")
        return unit

    def _trust_name(self, text: str) -> str:
        name = text[len("tomcat-trust/") :] if text.lower().startswith("tomcat-trust/") else text
        if name not in self.node.trust():
            raise CommandError(f"Error: certificate file {text} not found.")
        return name

    def _lookup_cert(self, store: str, text: str):
        if store == "trust":
            return pki.load_cert(self.node.trust()[self._trust_name(text)])
        unit = self.node.unit(text.split("/")[0])
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
            return [f"{u}/{u}.pem: {desc(self.node.own_cert(u))}" for u in self.node.units]
        return [
            f"tomcat-trust/{f}: {desc(pki.load_cert(pem))}" for f, pem in self.node.trust().items()
        ]

    async def _csr_gen(self, unit: str, multi: bool = False) -> None:
        include_ou = False
        if self.node.include_ou_prompt:
            include_ou = await self.ask_yes_no("Include OU in CSR (yes|no)? ")
        await asyncio.sleep(self.node.site.delay("csr_generate"))
        if multi:
            await self.node.gen_multi_csr(include_ou)
        else:
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
        await asyncio.sleep(self.node.site.delay("trust_import"))
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
        await asyncio.sleep(self.node.site.delay("cert_import"))
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

    async def _set_tls_cert_type(self, kind: str) -> None:
        """[doc] UCCX 15.0 Administration and Operations Guide, "set tls server cert_type"
        (the same command in the CUIC 12.6(2) and VVB 12.6 guides): a confirmation, then the
        system reboots to apply it. [assumed] `n` cancels with nothing stored; the reboot
        starts at once (the real node's one-minute notice is not waited)."""
        big = kind.upper()
        await self.out("", f"Configuring the server to use {big} certificates for all "
                           "inbound connections.", "")
        if not await self.ask_yes_no("Do you want to continue (y/n) ? "):
            await self.out("No entered", "Command canceled.")
            return
        n = self.node
        n.tls_cert_type["stored"] = kind
        n.save()
        stars = "*" * 56
        await self.out(
            "Yes entered",
            f"Configuring the server to use {big} ciphers for inbound connections.", "",
            f"Successfully configured the server to use {big} certificate for all inbound "
            "connections.", "",
            stars,
            "A system reboot will occur for the changes to take effect.",
            "It is highly recommended that you perform a system backup",
            "after the system reboot.",
            "Ensure all the nodes in the cluster are running on the same",
            "certificate type by running the 'set' command",
            stars, "",
            f"Broadcast message from root@{n.host.split('.')[0]}:", "",
            "The system is going down for reboot in 1 Minute",
        )
        n.spawn(n.system_restart())
        raise _Dropped  # the node goes away; the session ends with it

    # ---------------------------------------------------------------- COP wizard
    async def _upgrade(self) -> None:
        """`utils system upgrade initiate`, as the node's wizard variant asks it (README)."""
        n = self.node
        variant = n.wizard
        v12 = variant.startswith("12.5")
        if v12:  # [doc] Cisco 214134 (CUCM 12.5 upgrade enhancements)
            await self.out(
                "",
                "Warning: Do not close this window without first cancelling the upgrade.",
                "Warning: Before upgrading the cluster Cisco recommends installing the latest "
                "Upgrade Readiness COP file. Refer to the Upgrade Guide on cisco.com for details.",
                "",
            )
        else:
            await self.out(
                "", "Warning: Do not close this window without first canceling the upgrade.", ""
            )
        settings = None
        if variant == "12.5-subscriber" and await self.ask_yes_no(
            "Use download credentials from Publisher (yes/no) [yes]: ", default=True
        ):
            settings = n.site.publisher_download_settings()
            if settings is None:  # [assumed] wording
                raise CommandError("Error: the publisher has no download credentials to use.")
        if n.upgrade_open:
            # [doc] ponchotitlan/ansible_cucm_cop_file_installer answers "Assume control";
            # [assumed] the wording around it
            await self.out("An upgrade is already in progress by another session.")
            if not await self.ask_yes_no("Assume control (yes/no): "):
                await self.out("Upgrade canceled.")
                return
            n.upgrade_open = False
        self.in_upgrade = True
        try:
            await self._upgrade_steps(variant, settings)
        except (_Eof, _Dropped):
            n.upgrade_open = True  # [doc] the wizard warns not to close the window mid-way
            raise
        finally:
            self.in_upgrade = False

    async def _ask_value(self, label: str, default: str | None) -> str:
        """`Label: `, or `Label [remembered]: ` where an empty answer keeps the default."""
        prompt = f"{label} [{default}]: " if default else f"{label}: "
        return (await self.readline(prompt)).strip() or (default or "")

    async def _upgrade_steps(self, variant: str, settings: dict | None) -> None:
        n = self.node
        v12 = variant.startswith("12.5")
        if settings is None:
            menu = [
                "1) Remote Filesystem via SFTP",
                "2) Remote Filesystem via FTP",
                "3) Local DVD/CD",
            ]
            if v12:
                menu.append("4) Local Image <None>")  # [doc] Cisco 214134
            await self.out("Source:", "", *menu, "q) quit", "")
            while True:
                sel = (
                    await self.readline(f'Please select an option (1 - {len(menu)} or "q" ): ')
                ).strip().lower()
                if sel == "q":
                    await self.out("Upgrade canceled.")
                    return
                if sel == "1":
                    break
                if sel.isdigit() and 2 <= int(sel) <= len(menu):
                    raise CommandError(
                        "Error: this source is not available (only SFTP is simulated)."
                    )
            await self.out("")
            # [doc] Cisco 214134: from 12.5 the values typed last time are offered again
            remember = v12 or variant == "remembered-defaults"
            old = n.remembered if remember else {}
            settings = {"directory": await self._ask_value("Directory", old.get("directory"))}
            settings["server"] = await self._ask_value("Server", old.get("server"))
            settings["user"] = await self._ask_value("User Name", old.get("user"))
            settings["password"] = await self.readline("Password: ", echo=False)
            await self.out("")
            settings["smtp"] = await self._ask_value(
                "Please enter SMTP Host Server (optional)", old.get("smtp")
            )
            if remember:
                n.remembered = dict(settings)
        automatic = False
        if v12:
            # [doc] ponchotitlan/ansible_cucm_cop_file_installer (12.x), Cisco 214134;
            # [assumed] the defaults in brackets
            automatic = await self.ask_yes_no(
                "Continue with upgrade after download (yes/no) [yes]: ", default=True
            )
            await self.ask_yes_no(
                "Switch-version server after upgrade (yes/no) [no]: ", default=False
            )
        if variant == "unknown-question":  # [assumed] a question no client knows yet
            await self.ask_yes_no(
                "Enable the upgrade readiness check (yes/no) [no]: ", default=False
            )
        directory, server = settings["directory"], settings["server"]
        await self.out("Checking for valid upgrades. Please wait...")
        host, port = self._sftp_target(server)
        try:
            conn = await asyncio.wait_for(
                asyncssh.connect(
                    host,
                    port,
                    username=settings["user"],
                    password=settings["password"],
                    known_hosts=None,
                    client_keys=None,
                    agent_path=None,
                    preferred_auth="password",
                ),
                15,
            )
        except (TimeoutError, OSError, asyncssh.Error):
            raise CommandError(
                f"Error: could not log in to the SFTP server {server} as {settings['user']}."
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
                if variant == "slow-download" or n.site.profiled:  # a silence while it downloads
                    await asyncio.sleep(n.site.download_seconds)
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
        # [assumed] with "Continue with upgrade after download" the install starts unasked
        if not automatic and not await self.ask_yes_no("Start installation (yes/no): "):
            await self.out("The upgrade was canceled.")
            return
        stamp = dt.datetime.now().strftime("%Y-%m-%d.%H.%M.%S")
        await self.out(
            f"The upgrade log is install_log_{stamp}.log", "Upgrading the system.  Please wait..."
        )
        await asyncio.sleep(n.site.delay("cop_install"))
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
