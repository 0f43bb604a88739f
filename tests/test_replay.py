"""The SSH client against recorded sessions of real-format nodes (tests/transcripts/).

Each transcript is served by a real SSH server (tests/replay.py) that plays the node's side
and checks every line the client sends; each test then checks what the client concluded.
How to add one from a run's transcripts/<node>.log: docs/transcripts.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography import x509

from cckit import certs, topology
from cckit.credentials import MASK, Secret
from cckit.errors import CommandError, TransportError
from cckit.sites import CopRepository, Node
from cckit.vos.ssh import SSHTransport
from cckit.vos.transcript import parse

from .replay import ReplayServer

pytestmark = pytest.mark.timeout(60)

HERE = Path(__file__).parent / "transcripts"
COP = "ciscouccx.1151.ES01.ecdsa-disable.cop.sgn"
REPO = CopRepository(host="sftp.lab.example.net", port=22, directory="/cop", credential="sftp")
SFTP_PASSWORD = Secret("sftp-replay-secret")


@pytest.fixture(autouse=True)
def _own_secrets(monkeypatch):
    """redact() masks every secret the process resolved; other tests register short ones
    ("p"), which would mask letters of these transcripts: start from none."""
    from cckit import credentials

    monkeypatch.setattr(credentials, "_known", {SFTP_PASSWORD.reveal()})


def transcript(name: str) -> Path:
    return HERE / name


class Replay:
    """A replay server plus a client logged in to it."""

    def __init__(self, tmp_path: Path, name: str | Path, *, auth: str = "password",
                 time_scale: float = 0.0, max_pause: float = 1.0, **client):
        self.server = ReplayServer(name if isinstance(name, str) and "\n" in name
                                   else transcript(str(name)),
                                   known_hosts=tmp_path / "known_hosts", password="pw-replay",
                                   auth=auth, time_scale=time_scale, max_pause=max_pause)
        self.client = client
        self.tmp_path = tmp_path

    def __enter__(self):
        self.server.__enter__()
        node = Node(name="uccxa", role="uccx-publisher", host="uccxa.lab.example.net",
                    address="127.0.0.1", ssh_port=self.server.port)
        self.t = SSHTransport(node, "admin", Secret("pw-replay"),
                              known_hosts=self.server.known_hosts,
                              transcript_path=self.tmp_path / "transcripts" / "uccxa.log",
                              **self.client)
        return self

    def __exit__(self, *exc):
        try:
            self.t.close()
            # the server saw the client leave (or the test failed); let it finish
            deadline = time.monotonic() + 5
            while not self.server.errors and not self.server.done and \
                    time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            self.server.__exit__(*exc)

    def check(self) -> None:
        """The client sent exactly what the transcript expects, up to its end."""
        assert self.server.errors == [], self.server.errors
        assert self.server.done, f"stopped at record {self.server.position}"


def inputs(text: str) -> list:
    return [r for r in parse(text) if r.kind in ("line", "key")]


# ------------------------------------------------------------------------------ login


@pytest.mark.parametrize("auth", ["password", "keyboard-interactive"])
def test_login_pagination_off_and_cops_without_sgn(tmp_path, auth):
    with Replay(tmp_path, "login-and-version.txt", auth=auth, time_scale=0.1, timeout=0.3) as r:
        # the first admin: came 0.8 s after login (8 s on the real node): the login waits
        # with its own timeout, not the 0.3 s command timeout
        v = r.t.version()
        assert v.version == "11.5.1.12900-21"
        assert topology.ecdsa_in_use("uccx-publisher", v.version)
        assert v.has_cop("cmterm-devicepack9.1.2.13070-1.cop")
        # listed as `...cop`, named `...cop.sgn` on the SFTP server: installed, not again
        assert r.t.install_cop(COP, REPO, "copadmin", SFTP_PASSWORD) is False
    r.check()
    log = (tmp_path / "transcripts" / "uccxa.log").read_text()
    assert log.startswith("# cckit transcript of node uccxa") and log.endswith("> quit\n")


# ------------------------------------------------------------------------------ pager


def test_pager_is_answered_and_leaves_no_trace_in_the_output(tmp_path):
    with Replay(tmp_path, "pager.txt") as r:
        services = r.t.service_status()
        assert len(services) > 40
        assert services["Cisco Tomcat"] == "STARTED" and services["System SSH"] == "STARTED"
        assert services["Cisco DirSync"] == "STOPPED"
        assert not any("Press" in name for name in services)
        cert = r.t.get_certificate("own", "tomcat-ECDSA/tomcat-ECDSA.pem")  # paged mid-PEM
        want = x509.load_pem_x509_certificate(
            transcript("uccxa-ecdsa-selfsigned.pem").read_bytes())
        assert cert == want
    r.check()
    assert r.t.transcript.text().count(">key space") == 3


# ------------------------------------------------------------------------------ COP wizard


@pytest.mark.parametrize("name", [
    "cop-wizard-11.5.txt",
    "cop-wizard-12.5-subscriber.txt",
    "cop-wizard-open-session.txt",
    "cop-wizard-remembered-defaults.txt",
])
def test_cop_wizard(tmp_path, name):
    with Replay(tmp_path, name) as r:
        assert r.t.install_cop(COP, REPO, "copadmin", SFTP_PASSWORD) is True
    r.check()
    log = r.t.transcript.text()
    assert SFTP_PASSWORD.reveal() not in log
    # the client's own log of the session gives back the fixture's inputs: a run's
    # transcripts/<node>.log is a replay fixture once edited
    assert inputs(log)[:-1] == inputs(transcript(name).read_text())  # less the final quit


def test_cop_wizard_slow_download_is_no_question(tmp_path):
    # four minutes of silence (scaled to 0.6 s) after "Please wait...": more than the
    # question wait, yet nothing is answered and nothing fails
    with Replay(tmp_path, "cop-wizard-slow-download.txt", time_scale=0.1, max_pause=0.6,
                question_wait=0.2) as r:
        assert r.t.install_cop(COP, REPO, "copadmin", SFTP_PASSWORD) is True
    r.check()


def test_cop_wizard_unknown_question_fails_at_once(tmp_path):
    with Replay(tmp_path, "cop-wizard-unknown-question.txt", question_wait=0.3) as r:
        t0 = time.monotonic()
        with pytest.raises(CommandError) as e:
            r.t.install_cop(COP, REPO, "copadmin", SFTP_PASSWORD, timeout=900)
        assert time.monotonic() - t0 < 5
    r.check()  # nothing was sent after the question (not even `quit`)
    assert "the node asked 'Enable the upgrade readiness check (yes/no) [no]:'; nothing " \
        "was answered" in str(e.value)
    assert "transcripts/uccxa.log" in str(e.value)


# ------------------------------------------------------------------------------ paste


def test_paste_sends_exactly_the_certificate(tmp_path):
    ca = x509.load_pem_x509_certificate(transcript("example-lab-root-ca.pem").read_bytes())
    with Replay(tmp_path, "paste-trust.txt") as r:
        # an extra line after the END line would be read as a command: a replay mismatch
        assert r.t.upload_trust(ca) == "tomcat-trust/Example_Lab_Root_CA_3c0ffee42.pem"
    r.check()
    log = r.t.transcript.text()
    assert inputs(log)[:-1] == inputs(transcript("paste-trust.txt").read_text())
    assert certs.fingerprint_sha256(ca).replace(":", "") in log  # the marker names it


def test_error_with_a_period_is_an_error(tmp_path):
    with Replay(tmp_path, "error-with-period.txt") as r:
        with pytest.raises(CommandError, match=r"Executed command unsuccessfully\."):
            r.t.run("unset network cluster subscriber details")
    r.check()


# ------------------------------------------------------------------------------ resync

# Synthetic (not a recording): a prompt left over from an earlier extra input arrives, in
# its own packet, just before the echo of the next command.
STRAY = "\n".join([
    "| admin:",
    "> set cli pagination off",
    "| set cli pagination off",
    "| Automatic pagination is turned off",
    "| admin:",
    "> show version active",
    "|",
    "| admin:",
    "%% pause 0.3",
    "| show version active",
    "| Active Master Version: 11.5.1.10000-61",
    "| Active Version Installed Software Options:",
    "| No Installed Software Options Found.",
    "| admin:",
])


def test_a_stray_prompt_does_not_shift_the_outputs(tmp_path):
    with Replay(tmp_path, STRAY + "\n", time_scale=1.0) as r:
        assert r.t.version().version == "11.5.1.10000-61"
    r.check()


def test_a_timeout_names_the_command_and_what_the_node_last_printed(tmp_path):
    secret = Secret("hunter2-replay-secret")  # a secret the node happens to print
    stuck = "\n".join([
        "| admin:",
        "> set cli pagination off",
        "| set cli pagination off",
        "| Automatic pagination is turned off",
        "| admin:",
        "> show version active",
        "| show version active",
        f"| Active Master Version: 11.5.1.10000-61 {secret.reveal()}",
        "| Still working",
    ])
    with Replay(tmp_path, stuck + "\n", timeout=0.5) as r:
        with pytest.raises(TransportError) as e:
            r.t.version()
    msg = str(e.value)
    assert "timed out after 0.5s waiting for 'show version active' to finish" in msg
    assert "the node last printed: " in msg and "Still working" in msg
    assert secret.reveal() not in msg and MASK in msg
    assert secret.reveal() not in r.t.transcript.text()
