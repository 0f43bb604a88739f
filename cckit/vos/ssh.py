"""The VOS CLI over SSH: an interactive ``admin:`` shell driven by its prompts.

VOS has no exec channel for commands, only the interactive CLI, so this keeps one shell
open per node and, for each command, sends one line and reads until the next ``admin:``
prompt, answering the questions a command asks on the way. It waits on prompts with
deadlines, never on fixed sleeps. Host keys are checked against the site's known_hosts.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .. import certs
from ..credentials import Secret, redact
from ..errors import (
    AuthenticationError,
    CommandError,
    ConnectError,
    HostKeyError,
    InputError,
    TransportError,
)
from ..inventory import CopRepository, Node
from .base import ECDSA_UNIT, CertEntry, Transport, VersionInfo

__all__ = ["SSHTransport"]

log = logging.getLogger("cckit.vos.ssh")
logging.getLogger("paramiko").addHandler(logging.NullHandler())  # its errors become ours

PROMPT = "admin:"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_PROMPT_AT_END = re.compile(r"(?:^|\n)admin:\s*$")
_ERROR_LINES = re.compile(
    r"^(Executed command unsuccessfully|Invalid command|Error[: ].*|.*\bnot found\b.*"
    r"|Service not found.*|.*failed.*)$",
    re.I | re.M,
)
_CSR_BLOCK = re.compile(r"-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----.*?"
                        r"-----END (?:NEW )?CERTIFICATE REQUEST-----", re.S)
_SERVICE = re.compile(r"^(?P<name>[A-Za-z][\w .-]*?)\s*\[(?P<state>[A-Z ]+)\]", re.M)


@dataclass(frozen=True)
class Answer:
    """When the output ends with ``pattern``, send ``reply``.

    ``reply`` may be a :class:`Secret` (masked in the transcript) or a function of the output
    read since the last answer (for menus whose numbers are only known at run time).
    """

    pattern: str
    reply: str | Secret | Callable[[str], str]
    once: bool = True

    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.pattern + r"\s*$", re.I)


def _check_line(value: str, what: str, node: str) -> str:
    """Refuse values that would inject a second line or control keys into the CLI."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InputError(
            f"{what} contains a newline or control character; refusing to send it",
            node=node, hint="remove line breaks and control characters from the value",
        )
    return value


class SSHTransport(Transport):
    """An interactive VOS CLI session on one node."""

    def __init__(
        self,
        node: Node,
        username: str,
        password: Secret,
        *,
        known_hosts: Path | None,
        trust_on_first_use: bool = False,
        timeout: float = 30.0,
        include_ou: bool = True,
    ) -> None:
        self.node = node
        self.timeout = timeout
        self.include_ou = include_ou
        self.transcript: list[str] = []
        self._known_hosts = known_hosts
        self._client = paramiko.SSHClient()
        self._login = (username, password)  # a Secret: kept to log in again after a reboot
        self._connect(username, password, trust_on_first_use)

    # ----------------------------------------------------------------- connection

    def _connect(self, username: str, password: Secret, tofu: bool) -> None:
        node = self.node
        client = self._client
        if self._known_hosts is not None and self._known_hosts.exists():
            client.load_host_keys(str(self._known_hosts))
        elif not tofu:
            raise HostKeyError(
                f"no known_hosts file to check {node.address}:{node.ssh_port}'s host key"
                + (f" ({self._known_hosts} does not exist)" if self._known_hosts else ""),
                node=node.name,
                hint="add known_hosts: to the site file (ssh-keyscan -p PORT HOST, then check "
                "the fingerprint with the server's admin), or allow trust on first use",
            )
        client.set_missing_host_key_policy(
            paramiko.AutoAddPolicy() if tofu else paramiko.RejectPolicy()
        )
        try:
            client.connect(
                node.address, port=node.ssh_port, username=username,
                password=password.reveal(), look_for_keys=False, allow_agent=False,
                timeout=self.timeout, banner_timeout=self.timeout, auth_timeout=self.timeout,
            )
        except paramiko.BadHostKeyException as e:
            raise HostKeyError(
                f"the SSH host key of {node.address}:{node.ssh_port} has CHANGED "
                f"(got {e.key.get_name()} {e.key.fingerprint}); refusing to connect",
                node=node.name,
                hint="if the node was rebuilt, confirm the new key with its admin and update "
                "known_hosts; otherwise treat it as an attack",
            ) from None
        except paramiko.AuthenticationException:
            raise AuthenticationError(
                f"login as {username!r} refused (wrong password, or account locked after "
                "failed attempts)", node=node.name,
                hint="check the credential named in the site file; wait if the account is "
                "locked",
            ) from None
        except paramiko.SSHException as e:
            text = redact(str(e))
            if "not found in known_hosts" in text:
                raise HostKeyError(
                    f"the SSH host key of {node.address}:{node.ssh_port} is not in "
                    f"{self._known_hosts}", node=node.name,
                    hint="add the node's key to known_hosts after checking its fingerprint",
                ) from None
            if "No existing session" in text or "banner" in text:  # nothing answered SSH
                raise ConnectError(f"timed out after {self.timeout:.0f}s connecting to "
                                   f"{node.address}:{node.ssh_port} (no SSH answer)",
                                   node=node.name, hint="check the address, port, firewall "
                                   "and that the node is up") from None
            raise ConnectError(f"SSH failed: {text}", node=node.name) from None
        except OSError as e:
            raise ConnectError(
                f"cannot reach {node.address}:{node.ssh_port}: {e.strerror or e}",
                node=node.name, hint="check the address, port, firewall and that the node is up",
            ) from None
        if tofu and self._known_hosts is not None:
            self._known_hosts.parent.mkdir(parents=True, exist_ok=True)
            client.save_host_keys(str(self._known_hosts))
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(30)  # long maintenance windows: keep idle NAT/firewalls open
        self._chan = client.invoke_shell(term="vt100", width=250, height=50)
        self._chan.settimeout(0.2)
        self._buf = ""
        self._read_until_prompt(self.timeout, what="the CLI to start")

    def close(self) -> None:
        try:
            chan = getattr(self, "_chan", None)
            if chan is not None and not chan.closed:
                chan.send(b"quit\n")
                chan.status_event.wait(2.0)  # let the CLI end the session itself
        except (OSError, EOFError, paramiko.SSHException):
            pass
        self._client.close()

    # ----------------------------------------------------------------- reading

    def _recv(self) -> str:
        try:
            data = self._chan.recv(65536)
        except TimeoutError:
            return ""
        if not data:
            raise TransportError(
                "the SSH session closed while waiting for the node", node=self.node.name,
                hint="the node may have restarted or dropped the session: check it and rerun; "
                "completed steps are skipped",
            )
        text = _ANSI.sub("", data.decode("utf-8", "replace")).replace("\r", "")
        return text

    def _read_until_prompt(self, timeout: float, *, what: str,
                           answers: Sequence[Answer] = (),
                           until: Callable[[str], bool] | None = None) -> str:
        """Read until the ``admin:`` prompt (or ``until``), answering questions on the way."""
        deadline = time.monotonic() + timeout
        pending = list(answers)
        out, self._buf = self._buf, ""
        scan = 0  # questions are looked for only in what came after the last answer
        while True:
            tail = out[scan:]
            if _PROMPT_AT_END.search(tail):
                self._log(out)
                return _PROMPT_AT_END.sub("", out)
            if until is not None and until(tail):
                self._log(out)
                return out
            for ans in pending:
                if ans.compiled().search(tail):
                    if isinstance(ans.reply, Secret):
                        reply = ans.reply.reveal()
                    else:
                        reply = ans.reply(tail) if callable(ans.reply) else ans.reply
                    _check_line(reply, f"the answer to {ans.pattern!r}", self.node.name)
                    self._send(reply)  # the node's echo puts it in the transcript
                    scan = len(out)
                    if ans.once:
                        pending.remove(ans)
                    break
            if time.monotonic() > deadline:
                self._log(out)
                raise TransportError(
                    f"timed out after {timeout:.0f}s waiting for {what}",
                    node=self.node.name,
                    hint="the node is slow or stuck; check it in the OS Admin CLI and rerun",
                )
            out += self._recv()

    def _send(self, line: str) -> None:
        try:
            self._chan.send((line + "\n").encode())
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise TransportError(f"the SSH session failed while sending: {e}",
                                 node=self.node.name) from None

    def _log(self, text: str) -> None:
        text = redact(text)
        self.transcript.append(text)
        log.debug("%s: %s", self.node.name, text)

    def run(self, command: str, *, answers: Sequence[Answer] = (), timeout: float | None = None,
            check: bool = True) -> str:
        """Send one CLI command and return its output (without the echo and the prompt)."""
        _check_line(command, "the command", self.node.name)
        self._send(command)
        out = self._read_until_prompt(timeout or self.timeout, what=f"{command!r} to finish",
                                      answers=answers)
        lines = out.split("\n")
        if lines and lines[0].strip() == command.strip():
            lines = lines[1:]
        text = "\n".join(lines).strip("\n")
        if check:
            self._raise_on_error(command, text)
        return text

    def _raise_on_error(self, command: str, text: str) -> None:
        m = _ERROR_LINES.search(text)
        if m:
            raise CommandError(
                f"{command!r} failed: {m.group(0).strip()}", output=redact(text),
                node=self.node.name,
            )

    # ----------------------------------------------------------------- operations

    def version(self) -> VersionInfo:
        out = self.run("show version active")
        m = re.search(r"Active Master Version:\s*(\S+)", out)
        if not m:
            raise CommandError("unexpected output from 'show version active'", output=out,
                               node=self.node.name)
        cops: list[str] = []
        after = out.split("Active Version Installed Software Options:", 1)
        if len(after) == 2:
            for line in after[1].splitlines():
                line = line.strip()
                if line and not line.lower().startswith("no installed software"):
                    cops.append(line)
        return VersionInfo(m.group(1), tuple(cops))

    def list_certificates(self, store: str = "own") -> list[CertEntry]:
        if store not in ("own", "trust"):
            raise ValueError("store must be 'own' or 'trust'")
        out = self.run(f"show cert list {store}")
        entries = []
        for line in out.splitlines():
            m = re.match(r"\s*([\w.-]+/[^:\s]+):\s*(.*)$", line)
            if m:
                entries.append(CertEntry(store, m.group(1), m.group(2).strip(),
                                         unit=m.group(1).split("/")[0]))
        return entries

    def get_certificate(self, store: str, file: str) -> x509.Certificate:
        _check_line(file, "the certificate file name", self.node.name)
        out = self.run(f"show cert {store} {file}")
        try:
            found = certs.load_certificates(out, source=f"{self.node.name}:{file}")
        except InputError:
            raise CommandError(f"'show cert {store} {file}' printed no certificate",
                               output=out, node=self.node.name) from None
        return found[0]

    def pending_csr(self, unit: str = ECDSA_UNIT) -> x509.CertificateSigningRequest | None:
        # No CSR is a normal answer (some versions say so in words): only the listing counts.
        out = self.run("show csr list own", check=False)
        name = f"{unit}/{unit}.csr"
        if name not in out.split():
            return None
        pem = self.run(f"show csr own {name}")
        m = _CSR_BLOCK.search(pem)
        if not m:
            raise CommandError(f"'show csr own {name}' printed no CSR", output=pem,
                               node=self.node.name, unit=unit)
        return certs.load_csr(m.group(0), source=f"{self.node.name}:{name}")

    def generate_csr(self, unit: str = ECDSA_UNIT, *, key_size: int | None = None,
                     hash_algorithm: str | None = None) -> x509.CertificateSigningRequest:
        # The CLI takes no key size or hash: the node's defaults apply. Callers who asked
        # for specific values compare them with the CSR that comes back.
        out = self.run(
            f"set csr gen {unit}",
            answers=[Answer(r"Include OU in CSR \(yes\|no\)\?",
                            "yes" if self.include_ou else "no")],
            timeout=max(self.timeout, 120),
        )
        if not re.search(r"Successfully\s+Generated\s+CSR\s+for\s+" + re.escape(unit), out, re.I):
            raise CommandError(f"CSR generation for {unit} did not confirm success",
                               output=out, node=self.node.name, unit=unit)
        csr = self.pending_csr(unit)
        if csr is None:
            raise CommandError(f"the CSR for {unit} is not listed after generation",
                               node=self.node.name, unit=unit)
        return csr

    def _paste(self, command: str, cert: x509.Certificate) -> str:
        """Run an import command and paste ``cert`` at its prompt; returns the output."""
        self._send(command)
        out = self._read_until_prompt(self.timeout, what="the paste prompt",
                                      until=lambda o: "Paste the Certificate" in o)
        if "Paste the Certificate" not in out:  # the node answered with an error instead
            return out
        for line in cert.public_bytes(Encoding.PEM).decode().strip().splitlines():
            self._send(line)
        self._send("")
        return self._read_until_prompt(max(self.timeout, 120), what=f"{command!r} to finish")

    def upload_trust(self, cert: x509.Certificate) -> str:
        reasons = certs.check_trust_certificate(cert)
        if reasons:
            raise InputError(reasons[0], node=self.node.name, unit="tomcat-trust")
        out = self._paste("set cert import trust tomcat", cert)
        self._raise_on_error("set cert import trust tomcat", out)
        if not re.search(r"Successfully\s+imported\s+certificate", out, re.I):
            raise CommandError("trust import did not confirm success", output=out,
                               node=self.node.name, unit="tomcat-trust")
        return self.trust_files([cert]).get(certs.fingerprint_sha256(cert), "")

    def upload_identity(self, unit: str, cert: x509.Certificate, ca_file: str) -> None:
        _check_line(ca_file, "the CA file name", self.node.name)
        command = f"set cert import own {unit} {ca_file}"
        out = self._paste(command, cert)
        self._raise_on_error(command, out)
        if not re.search(r"Successfully\s+imported\s+certificate\s+for\s+" + re.escape(unit),
                         out, re.I):
            raise CommandError(f"import of {unit} did not confirm success", output=out,
                               node=self.node.name, unit=unit)

    def service_status(self) -> dict[str, str]:
        out = self.run("utils service list", timeout=max(self.timeout, 60))
        return {m.group("name").strip(): m.group("state").strip()
                for m in _SERVICE.finditer(out)}

    def restart_service(self, name: str = "Cisco Tomcat", *, timeout: float = 600) -> None:
        _check_line(name, "the service name", self.node.name)
        deadline = time.monotonic() + timeout
        started = re.compile(re.escape(name) + r"\s*\[STARTED\]")
        out = self.run(f"utils service restart {name}", timeout=timeout, check=False)
        if re.search(r"Service not found", out, re.I):
            raise CommandError(f"no service named {name!r}", output=out, node=self.node.name,
                               hint="check the service names in the site file")
        if started.search(out):
            return
        # Real nodes sometimes never print [STARTED]: poll the status instead.
        log.info("%s: no [STARTED] banner for %s; polling status", self.node.name, name)
        while time.monotonic() < deadline:
            if self.service_status().get(name) == "STARTED":
                return
            time.sleep(1.0)
        raise TransportError(
            f"{name} did not reach STARTED within {timeout:.0f}s", node=self.node.name,
            hint=f"check 'utils service list' on the node; restart {name} by hand if needed",
        )

    def install_cop(self, file: str, repository: CopRepository, username: str,
                    password: Secret, *, timeout: float = 900) -> bool:
        for value, what in ((file, "the COP file name"), (repository.directory, "directory"),
                            (repository.host, "server"), (username, "user name")):
            _check_line(value, what, self.node.name)
        if file in self.version().cops:
            return False
        server = repository.host if repository.port == 22 else \
            f"{repository.host}:{repository.port}"
        out = self.run(
            "utils system upgrade initiate",
            answers=[
                Answer(r'Please select an option \(1 - \d+ or "q" \):', _menu_choice(file),
                       once=False),
                Answer(r"Directory:", repository.directory),
                Answer(r"Server:", server),
                Answer(r"User Name:", username),
                Answer(r"Password:", password),
                Answer(r"SMTP Host Server \(optional\):", ""),

                Answer(r"Start installation \(yes/no\):", "yes"),
            ],
            timeout=timeout, check=False,
        )
        if not re.search(r"Successfully installed\s+" + re.escape(file), out):
            m = _ERROR_LINES.search(out)
            raise CommandError(
                f"COP {file} was not installed: {m.group(0).strip() if m else 'no success line'}",
                output=redact(out), node=self.node.name,
                hint="check that the file is on the SFTP server in "
                f"{repository.directory} and the SFTP credentials",
            )
        return True

    def reboot(self, *, timeout: float = 900) -> None:
        """``utils system restart``, then wait (bounded) until the node accepts SSH again and
        Cisco Tomcat is STARTED; the transport is then logged in again."""
        self._send("utils system restart")
        try:
            self._read_until_prompt(
                self.timeout, what="the restart question",
                answers=[Answer(r"Enter \(yes/no\)\?", "yes")],
                until=lambda o: "being Restarted" in o,
            )
        except TransportError:
            pass  # the session drops as the node goes down
        self._client.close()
        deadline = time.monotonic() + timeout
        time.sleep(1.0)
        while True:
            try:
                self._client = paramiko.SSHClient()
                self._connect(*self._login, False)
                if self.service_status().get("Cisco Tomcat") == "STARTED":
                    return
            except (AuthenticationError, HostKeyError):
                raise
            except TransportError:  # not up yet
                self._client.close()
            if time.monotonic() > deadline:
                raise TransportError(
                    f"the node did not come back within {timeout:.0f}s of a system restart",
                    node=self.node.name,
                    hint="check the node's console; it may still be starting",
                )
            time.sleep(2.0)


def _menu_choice(file: str) -> Callable[[str], str]:
    """Answer the wizard's menus: SFTP as the source, then ``file`` by its number (or quit)."""

    def choose(text: str) -> str:
        if "Remote Filesystem via SFTP" in text:
            return "1"
        m = re.search(r"^\s*(\d+)\)\s*" + re.escape(file) + r"\s*$", text, re.M)
        return m.group(1) if m else "q"

    return choose
