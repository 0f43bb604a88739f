"""The VOS CLI over SSH: an interactive ``admin:`` shell driven by its prompts.

VOS has no exec channel for commands, only the interactive CLI, so this keeps one shell
open per node and, for each command, sends one line and reads until the next ``admin:``
prompt, answering the questions a command asks on the way. It waits on prompts with
deadlines, never on fixed sleeps. Host keys are checked against the site's known_hosts.

What real nodes do that this copes with (public transcripts; cckit/vosmock/README.md):
paging is on after login (``set cli pagination off`` is sent first, and a pager that still
shows is answered with a space); the prompt may follow an erase-line (``\r ESC[K admin:``);
the first ``admin:`` can take a minute; a command's output starts after its echo, so a
stray prompt never shifts the outputs; a question nobody expected fails at once, naming it.
"""

from __future__ import annotations

import codecs
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

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
from ..sites import CopRepository, Node
from .base import ECDSA_UNIT, RSA_UNIT, CertEntry, Transport, VersionInfo
from .transcript import TranscriptWriter

__all__ = ["SSHTransport"]

log = logging.getLogger("cckit.vos.ssh")
logging.getLogger("paramiko").addHandler(logging.NullHandler())  # its errors become ours

PROMPT = "admin:"
PAGER = "Press <enter> for 1 line, <space> for one page, or <q> to quit"
LOGIN_TIMEOUT = 120.0  # the first admin: can take 8-60 s after login on a real node
QUESTION_WAIT = 3.0  # silence after an unknown question before giving up on it
ECHO_WAIT = 5.0  # a node that does not echo commands: take the output from the start
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_ERASE_LINE = re.compile(r"[^\n]*\r\x1b\[K")
_PROMPT_AT_END = re.compile(r"(?:^|\n)admin:[ \t]*\Z")
_TRAILING_PROMPTS = re.compile(r"(?:(?:\A|\n)admin:[ \t]*)+\Z")
_QUESTION = re.compile(r"(?:^|\n)([^\n]*\S[^\n]*?[:?])[ \t]*\Z")
_ERROR_LINES = re.compile(
    r"^(Executed command unsuccessfully\.?|Invalid command|Error[: ].*|.*\bnot found\b.*"
    r"|Service not found.*|.*failed.*)$",
    re.I | re.M,
)
_CSR_BLOCK = re.compile(r"-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----.*?"
                        r"-----END (?:NEW )?CERTIFICATE REQUEST-----", re.S)
_SERVICE = re.compile(r"^(?P<name>[A-Za-z][\w .-]*?)\s*\[(?P<state>[A-Z ]+)\]", re.M)
_DEFAULT = r"(?: \[[^\]\n]*\])?"  # a remembered value shown as the default: `Directory [/cop]:`


def _screen(raw: str) -> str:
    """What a terminal shows for ``raw``: line ends normalised, erased lines gone, no ANSI."""
    text = _ERASE_LINE.sub("", raw.replace("\r\n", "\n"))
    return _ANSI.sub("", text).replace("\r", "")


#: How far back from the end of the output the end-of-output patterns look (at least).
_END_WINDOW = 2048


def _end(raw: str, start: int) -> str:
    """The last lines of ``raw[start:]``: from a line break at least ``_END_WINDOW``
    characters before the end (the break kept, so ``(?:^|\n)`` anchors still hold).

    Searching the whole output again for every chunk that arrives made reading a command
    quadratic in its output; what the end-anchored patterns look at is all here.
    """
    cut = raw.rfind("\n", start, max(start, len(raw) - _END_WINDOW))
    return raw[cut if cut >= 0 else start:]


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
        return re.compile(self.pattern + r"[ \t]*\Z", re.I)


def _check_line(value: str, what: str, node: str) -> str:
    """Refuse values that would inject a second line or control keys into the CLI."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InputError(
            f"{what} contains a newline or control character; refusing to send it",
            node=node, hint="remove line breaks and control characters from the value",
        )
    return value


class SSHTransport(Transport):
    """An interactive VOS CLI session on one node.

    ``timeout`` bounds each command, ``login_timeout`` the wait for the first ``admin:``
    after login. ``transcript`` records the session (secrets redacted); with
    ``transcript_path`` it is also appended to that file as it happens.
    """

    commands: ClassVar[Mapping[str, str]] = {
        "generate_csr": "set csr gen {unit}",
        "generate_multi_server_csr": "set csr gen multi-server {unit}",
        "list_csr": "show csr list own",
        "show_csr": "show csr own {unit}/{unit}.csr",
        "upload_trust": "set cert import trust tomcat",
        "upload_identity": "set cert import own {unit} tomcat-trust/<issuer>.pem",
        "list_trust": "show cert list trust",
        "list_own": "show cert list own",
        "show_own": "show cert own {unit}/{unit}.pem",
        "version": "show version active",
        "restart": "utils service restart {service}",
        "install_cop": "utils system upgrade initiate",
    }

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
        login_timeout: float | None = None,
        question_wait: float | None = None,
        transcript_path: Path | None = None,
        pagination_off: bool = True,
    ) -> None:
        self.node = node
        self.timeout = timeout
        self.include_ou = include_ou
        self.login_timeout = LOGIN_TIMEOUT if login_timeout is None else login_timeout
        self.question_wait = QUESTION_WAIT if question_wait is None else question_wait
        self.pagination_off = pagination_off
        self.transcript = TranscriptWriter(
            transcript_path, (f"cckit transcript of node {node.name} ({node.host}, "
                              f"{node.address}:{node.ssh_port})",))
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
        refused = AuthenticationError(
            f"login as {username!r} refused (wrong password, or account locked after "
            "failed attempts)", node=node.name,
            hint="check the credential named in the site file; wait if the account is locked",
        )
        try:
            self._open(username, password)
        except paramiko.BadHostKeyException as e:
            raise HostKeyError(
                f"the SSH host key of {node.address}:{node.ssh_port} has CHANGED "
                f"(got {e.key.get_name()} {e.key.fingerprint}); refusing to connect",
                node=node.name,
                hint="if the node was rebuilt, confirm the new key with its admin and update "
                "known_hosts; otherwise treat it as an attack",
            ) from None
        except paramiko.AuthenticationException:
            raise refused from None
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
        if transport is None or not transport.is_authenticated():
            raise refused
        transport.set_keepalive(30)  # long maintenance windows: keep idle NAT/firewalls open
        self._chan = client.invoke_shell(term="vt100", width=250, height=24)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._desync = False
        self.transcript.note(f"logged in as {username}")
        self._expect("the CLI to start (the first admin: prompt)", self.login_timeout)
        if self.pagination_off:
            # Paging is on after login; public tools turn it off first [doc]. A node that
            # refuses still works: its pager is answered.
            out = self.run("set cli pagination off", check=False)
            if "pagination is turned off" not in out.lower():
                log.info("%s: pagination not turned off: %s", node.name, out.strip()[:200])

    def _open(self, username: str, password: Secret) -> None:
        """Connect, check the host key, then log in with ONE attempt: the password, or where
        the node offers keyboard-interactive only, that (each password prompt answered).
        (paramiko's own fallback would retry after a failure: two strikes toward lockout.)"""
        try:
            self._client.connect(
                self.node.address, port=self.node.ssh_port, username=username, password=None,
                look_for_keys=False, allow_agent=False, timeout=self.timeout,
                banner_timeout=self.timeout, auth_timeout=self.timeout,
            )
        except paramiko.SSHException as e:
            if "No authentication methods available" not in str(e):
                raise
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise paramiko.SSHException("the SSH connection closed before login")
        try:
            transport.auth_password(username, password.reveal(), fallback=False)
        except paramiko.BadAuthenticationType as e:
            if "keyboard-interactive" not in e.allowed_types:
                raise
            transport.auth_interactive(username, _kbdint_handler(username, password))

    def close(self) -> None:
        try:
            chan = getattr(self, "_chan", None)
            if chan is not None and not chan.closed and not getattr(self, "_desync", True):
                self._send_line("quit")
                chan.status_event.wait(2.0)  # let the CLI end the session itself
                self._drain()
        except (OSError, EOFError, paramiko.SSHException, TransportError):
            pass
        self.transcript.close()
        self._client.close()

    # ----------------------------------------------------------------- reading

    def _recv(self, wait: float) -> str:
        """Raw text the node sent within ``wait`` seconds ('' if none)."""
        try:
            self._chan.settimeout(max(wait, 0.0))
            data = self._chan.recv(65536)
        except TimeoutError:
            return ""
        if not data:
            self._desync = True
            raise TransportError(
                "the SSH session closed while waiting for the node", node=self.node.name,
                hint="the node may have restarted or dropped the session: check it and rerun; "
                "completed steps are skipped",
            )
        text = self._decoder.decode(data)
        self.transcript.received(text)
        return text

    def _drain(self) -> None:
        """Whatever arrived since the last prompt (nothing, normally) goes to the transcript."""
        while self._chan.recv_ready():
            if not self._recv(0.0):
                break

    def _expect(self, what: str, timeout: float, *, command: str | None = None,
                answers: Sequence[Answer] = (),
                until: Callable[[str], bool] | None = None) -> str:
        """Read until the ``admin:`` prompt (or ``until``), answering questions and the
        pager on the way; returns the screen text (after the echo of ``command``).

        Only what follows the echo of ``command`` counts, so a stray prompt left by an
        earlier input cannot be taken for this command's end. A partial last line that
        looks like a question, matches no answer and stays unanswered for
        ``question_wait`` seconds fails the command at once, naming the question.
        """
        started = time.monotonic()
        deadline = started + timeout
        pending = list(answers)
        raw = ""
        pagers = 0
        begin: int | None = 0 if command is None else None  # raw offset of the output
        scan = 0  # raw offset after the last answer: questions are looked for after it
        last_data = started
        while True:
            now = time.monotonic()
            if begin is None:
                m = re.search(re.escape(command or "") + r"[ \t]*\r?\n", raw)
                if m:
                    begin = m.end()
                elif now - started > ECHO_WAIT and _PROMPT_AT_END.search(_screen(raw)):
                    self.transcript.note(f"no echo of {command!r}; output taken from the start")
                    begin = 0
            if begin is not None:
                scan = max(scan, begin)
                if raw.count(PAGER) > pagers:  # paging is on: one more page, please
                    pagers = raw.count(PAGER)
                    self._key(" ")
                    last_data = now
                    continue
                # The prompt, a question and an answer's cue are all on the last line:
                # only the end of the screen is searched (a long output or a pasted
                # certificate's echo arrives in many chunks; see _end).
                if _PROMPT_AT_END.search(_screen(_end(raw, begin))):
                    return _TRAILING_PROMPTS.sub("", _screen(raw[begin:]))
                if until is not None and until(_screen(raw[scan:])):
                    return _screen(raw[begin:])
                end = _screen(_end(raw, scan))
                answered = False
                for ans in pending:
                    if ans.compiled().search(end):
                        tail = _screen(raw[scan:])
                        if isinstance(ans.reply, Secret):
                            reply = ans.reply.reveal()
                        else:
                            reply = ans.reply(tail) if callable(ans.reply) else ans.reply
                        _check_line(reply, f"the answer to {ans.pattern!r}", self.node.name)
                        self._send_line(reply)
                        scan = len(raw)
                        last_data = now
                        if ans.once:
                            pending.remove(ans)
                        answered = True
                        break
                if answered:
                    continue
                q = _QUESTION.search(end[max(end.rfind("\n"), 0):])  # the last line
                if q and now - last_data >= self.question_wait:
                    self._desync = True
                    question = redact(q.group(1).strip())
                    raise CommandError(
                        f"{what}: the node asked {question!r}; nothing was answered",
                        output=redact(_screen(raw[begin:])), node=self.node.name,
                        hint="cckit does not know this question, so it stopped there. Answer "
                        "or cancel it on the node's CLI by hand, then rerun; the session "
                        f"transcript (transcripts/{self.node.name}.log) shows the dialogue",
                    )
            if now > deadline:
                self._desync = True
                last = redact(_screen(raw).strip()[-300:])
                raise TransportError(
                    f"timed out after {timeout:g}s waiting for {what}; "
                    + (f"the node last printed: {last!r}" if last else "the node printed "
                       "nothing"),
                    node=self.node.name,
                    hint="the node is slow or stuck; check it in the OS Admin CLI and rerun",
                )
            chunk = self._recv(min(0.2, max(deadline - now, 0.0)))
            if chunk:
                raw += chunk
                last_data = time.monotonic()

    def _send(self, data: str) -> None:
        try:
            self._chan.sendall(data.encode())
        except (OSError, EOFError, paramiko.SSHException) as e:
            self._desync = True
            raise TransportError(f"the SSH session failed while sending: {redact(str(e))}",
                                 node=self.node.name) from None

    def _send_line(self, line: str) -> None:
        self.transcript.line(line)
        self._send(line + "\n")

    def _key(self, char: str) -> None:
        """One keystroke without Enter (the pager's space)."""
        self.transcript.key(char)
        self._send(char)

    def run(self, command: str, *, answers: Sequence[Answer] = (), timeout: float | None = None,
            check: bool = True) -> str:
        """Send one CLI command and return its output (without the echo and the prompt)."""
        _check_line(command, "the command", self.node.name)
        if self._desync:
            raise TransportError(
                f"not sending {command!r}: the session lost step with the node earlier",
                node=self.node.name, hint="reconnect (rerun the step)")
        self._drain()
        self._send_line(command)
        out = self._expect(f"{command!r} to finish", timeout or self.timeout, command=command,
                           answers=answers)
        text = out.strip("\n")
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
        return self._csr_gen(f"set csr gen {unit}", unit)

    def generate_multi_server_csr(self, unit: str = RSA_UNIT) -> x509.CertificateSigningRequest:
        return self._csr_gen(f"set csr gen multi-server {unit}", unit)

    def _csr_gen(self, command: str, unit: str) -> x509.CertificateSigningRequest:
        out = self.run(
            command,
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
        """Run an import command and paste ``cert`` at its prompt; returns the output.

        The node reads the paste up to the ``-----END CERTIFICATE-----`` line; anything
        typed after it would be the next command line, so exactly the PEM is sent.
        """
        _check_line(command, "the command", self.node.name)
        self._drain()
        self._send_line(command)
        out = self._expect(f"the paste prompt of {command!r}", self.timeout, command=command,
                           until=lambda o: "Paste the Certificate" in o)
        if "Paste the Certificate" not in out:
            return out  # the node answered with an error instead (and its prompt came back)
        pem = cert.public_bytes(Encoding.PEM).decode().strip()
        self.transcript.paste(pem)
        self._send(pem + "\n")
        return self._expect(f"{command!r} to finish", max(self.timeout, 120))

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
        if self.version().has_cop(file):
            return False
        server = repository.host if repository.port == 22 else \
            f"{repository.host}:{repository.port}"
        # An upgrade session left open (by another admin, or a dropped run) makes the wizard
        # ask to assume control; public tools cancel it first [doc].
        self.run("utils system upgrade cancel", check=False, timeout=max(self.timeout, 120))
        out = self.run(
            "utils system upgrade initiate",
            answers=[
                Answer(r"[^\n]*assume control[^\n]*[:?]", "yes"),
                # 12.x subscribers: we bring our own repository, not the publisher's
                Answer(r"Use download credentials from Publisher \(yes/no\)" + _DEFAULT + ":",
                       "no"),
                Answer(r'Please select an option \(1 - \d+ or "q" \):', _menu_choice(file),
                       once=False),
                Answer(r"Directory" + _DEFAULT + ":", repository.directory),
                Answer(r"Server" + _DEFAULT + ":", server),
                Answer(r"User Name" + _DEFAULT + ":", username),
                Answer(r"Password" + _DEFAULT + ":", password),
                Answer(r"SMTP Host Server \(optional\)" + _DEFAULT + ":", ""),
                # 12.x: keep the 11.5 flow (confirm after the download), never switch version
                Answer(r"Continue with upgrade after download[^\n]*:", "no"),
                Answer(r"Switch-version server after upgrade[^\n]*:", "no"),
                Answer(r"Start installation \(yes/no\)" + _DEFAULT + ":", "yes"),
            ],
            timeout=timeout, check=False,
        )
        installed = re.escape(file[:-4] if file.lower().endswith(".sgn") else file)
        if not re.search(r"Successfully installed\s+" + installed, out):
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
        self._drain()
        self._send_line("utils system restart")
        try:
            self._expect(
                "the restart question", self.timeout, command="utils system restart",
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


def _kbdint_handler(username: str, password: Secret) -> Callable[..., list[str]]:
    """Keyboard-interactive: the password for each password prompt, the user name for a
    user name prompt; any other prompt is refused (never guess an answer)."""

    def handler(title: str, instructions: str, fields: list[tuple[str, bool]]) -> list[str]:
        out = []
        for prompt, _echo in fields:
            low = prompt.lower()
            if "password" in low:
                out.append(password.reveal())
            elif "user" in low or "login" in low:
                out.append(username)
            else:
                raise paramiko.AuthenticationException(
                    f"unexpected keyboard-interactive prompt {prompt!r}")
        return out

    return handler


def _menu_choice(file: str) -> Callable[[str], str]:
    """Answer the wizard's menus: SFTP as the source, then ``file`` by its number (or quit)."""

    def choose(text: str) -> str:
        if "Remote Filesystem via SFTP" in text:
            return "1"
        m = re.search(r"^\s*(\d+)\)\s*" + re.escape(file) + r"\s*$", text, re.M)
        return m.group(1) if m else "q"

    return choose
