"""End to end with the library alone: every scenario against a fresh VOS mock, proven by the
TLS probe; and the failure paths (gate, dropped session, missing COP, no [STARTED], lock)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest

from cckit import certs, display
from cckit.ca import get_adapter
from cckit.errors import (
    AuthenticationError,
    CommandError,
    GateError,
    HostKeyError,
    ProcedureError,
    SiteLockedError,
    TransportError,
    WaitingForCA,
)
from cckit.procedures import SiteSession, preflight
from cckit.procedures.ca_signed import CaSigned
from cckit.procedures.rsa_only import RsaOnly
from cckit.procedures.self_signed import SelfSigned
from cckit.results import Action, Outcome
from cckit.sites import load_site
from cckit.vosmock.testing import running_site

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def mock(tmp_path):
    with running_site(tmp_path / "mock", restart_seconds=0.2) as m:
        yield m


@pytest.fixture
def session(mock, tmp_path):
    site = load_site(mock.site_file)
    with SiteSession(site, workdir=tmp_path / "run", tls_timeout=3) as s:
        yield s


def presented(session, client="ecdsa"):
    return {(n.name, r.port): r for n in session.nodes for r in session.presented(n, client)}


def mock_state(mock):
    """Everything on disk that a procedure could change."""
    state = {}
    for p in sorted(mock.state_dir.rglob("*")):
        # the journal logs the commands a node received: what it was asked, not its state
        if p.is_file() and "host_key" not in p.name and p.suffix != ".lock" \
                and p.name != "journal.jsonl":
            state[str(p.relative_to(mock.state_dir))] = p.read_bytes()
    return state


def through_trust(proc):
    """CSRs, signing, the gate and the trust upload: what precedes the identity uploads."""
    proc.generate_csrs()
    proc.sign()
    proc.gate()
    proc.upload_trust()
    return proc


def run_ca_signed(session, ca):
    proc = CaSigned(session, ca)
    results = proc.run_all()
    return proc.signed, results[-1]


# --------------------------------------------------------------------------- scenarios


def test_preflight_and_advisor(session):
    pf = preflight.Preflight(session)
    r = pf.reachability()
    assert r.ok and len(r.records) == 3
    versions = pf.versions
    assert all(v.version.startswith("11.5") and v.ecdsa_in_use for v in versions.values())
    inv = pf.certificates()
    assert {rec.unit for rec in inv.records} == {"tomcat", "tomcat-ECDSA"}
    adv = preflight.advise(versions, app_certs_ca_signed=True, ca_capability="ec")
    assert adv.scenario == "ca_signed"
    adv = preflight.advise(versions, app_certs_ca_signed=True, ca_capability="rsa-only")
    assert adv.scenario == "rsa_only" and any("CSCvb58580" in x for x in adv.reasons)
    assert preflight.advise(versions, app_certs_ca_signed=False, ca_capability="none",
                            agents_may_accept_certificates=True).scenario == "self_signed"


def test_ca_signed_end_to_end(session, tmp_path):
    ca = get_adapter("lab", directory=tmp_path / "labca")
    before = presented(session)
    assert all(r.cert.self_signed for r in before.values())
    signed, result = run_ca_signed(session, ca)
    assert result.ok, result
    assert len(signed) == 3
    after = presented(session)
    for (node, _port), r in after.items():
        assert r.cert.sha256 == certs.fingerprint_sha256(signed[node].certificate)
        assert r.cert.key_type == "EC" and not r.cert.self_signed
    # RSA clients still get the RSA tomcat certificate
    assert all(r.cert.key_type == "RSA" for r in presented(session, "rsa").values())
    # the audit log has one record per change, no secret
    log = (tmp_path / "run" / "operations.jsonl").read_text().splitlines()
    ops = [json.loads(x)["operation"] for x in log]
    assert ops.count("generate_csr") == 3 and ops.count("upload_identity") == 3
    # a rerun changes nothing: every node is already CA-signed
    signed2, result2 = run_ca_signed(session, ca)
    assert result2.ok and signed2 == {}
    log2 = (tmp_path / "run" / "operations.jsonl").read_text().splitlines()
    assert log2 == log
    # the advisor knows a completed CA-signed site: nothing to do until the renewal
    adv = preflight.Preflight(session).advise(ca_capability="ec")
    assert adv.scenario == "done" and not adv.next_step, adv
    first = min(r.cert.not_after for r in after.values())
    due = (first - dt.timedelta(days=preflight.RENEW_BEFORE_DAYS)).date().isoformat()
    assert f"next renewal due {due}" in display.text(adv) and "renew=True" in display.text(adv)
    assert display.text(adv).startswith("Nothing to do: the site is CA-signed")


def test_rsa_signed_is_stopped_at_the_gate_and_nothing_changes(session, mock, tmp_path):
    ca = get_adapter("lab", directory=tmp_path / "labca", algorithm="rsa")
    proc = CaSigned(session, ca)
    proc.generate_csrs()
    proc.sign()
    state = mock_state(mock)
    with pytest.raises(GateError) as e:
        proc.gate()
    assert len(e.value.reasons) == 3 and "rsa_only" in str(e.value)
    with pytest.raises(ProcedureError, match="gate"):
        proc.upload_identities()
    assert mock_state(mock) == state
    # rerun with a good CA: the pending CSRs are reused, not regenerated
    good = CaSigned(session, get_adapter("lab", directory=tmp_path / "goodca"))
    r = good.generate_csrs()
    assert {rec.action for rec in r.records} == {Action.REUSED}
    assert good.run_all()[-1].ok


def test_self_signed_bundle(session, tmp_path):
    proc = SelfSigned(session, tmp_path / "bundle")
    r = proc.collect()
    assert len(proc.certificates) == 3 and "3 distinct" in r.verdict
    b = proc.build_bundle()
    assert (tmp_path / "bundle" / "install-trusted-root.ps1").exists()
    assert len(b.records) == 3


def test_rsa_only_then_rollback(session):
    disable = RsaOnly(session, "disable")
    plan = disable.plan()
    assert len([c for c in plan.commands if c.step == "install_cops"]) == 3
    r = disable.install_cops()
    assert {rec.action for rec in r.records} == {Action.INSTALLED}
    assert "3 node(s) restarted" in disable.restart().verdict
    v = disable.verify()
    assert v.ok, v
    assert all(r.cert is None for r in presented(session).values())
    assert all(r.cert.key_type == "RSA" for r in presented(session, "rsa").values())
    # rerun: nothing installed or restarted again
    again = disable.install_cops()
    assert {rec.action for rec in again.records} == {Action.ALREADY_INSTALLED}
    assert again.outcome is Outcome.NOTHING_TO_DO
    assert "0 node(s) restarted" in disable.restart().verdict
    rollback = RsaOnly(session, "rollback")
    results = rollback.run_all()
    assert results[-1].ok, results[-1]
    assert all(r.cert.key_type == "EC" for r in presented(session).values())


def test_plans_change_nothing(session, mock, tmp_path):
    state = mock_state(mock)
    ca = get_adapter("lab", directory=tmp_path / "labca")
    for p in (CaSigned(session, ca).plan(), RsaOnly(session, "disable").plan(),
              RsaOnly(session, "rollback").plan(), SelfSigned(session, tmp_path / "b").plan(),
              preflight.Preflight(session).plan()):
        assert str(p).startswith("Plan for")
    assert mock_state(mock) == state
    assert not (tmp_path / "run" / "operations.jsonl").exists() or \
        (tmp_path / "run" / "operations.jsonl").read_text() == ""


# --------------------------------------------------------------------------- failures


def test_wrong_password(mock, tmp_path):
    site = load_site(mock.site_file)
    pw_file = next(p for p in mock.state_dir.rglob("*") if p.is_file() and
                   p.read_text(errors="ignore").strip() == mock.password)
    pw_file.write_text("wrong-password\n")
    with SiteSession(site, workdir=tmp_path / "run") as s, pytest.raises(AuthenticationError):
        s.transport(site.publisher)


def test_unknown_host_key(mock, tmp_path):
    site = load_site(mock.site_file)
    site.known_hosts.write_text("")
    with SiteSession(site, workdir=tmp_path / "run") as s, pytest.raises(HostKeyError):
        s.transport(site.publisher)


def test_drop_during_import_then_rerun_completes(session, mock, tmp_path):
    ca = get_adapter("lab", directory=tmp_path / "labca")
    proc = through_trust(CaSigned(session, ca))
    mock.faults.set("drop_import", True, node="uccx-sub")
    with pytest.raises(TransportError):
        proc.upload_identities()
    mock.faults.clear()
    # rerun from the top: CSRs of the nodes not yet imported are reused (a cert is in
    # flight); the node imported before the drop is left alone
    rerun = CaSigned(session, ca)
    r = rerun.generate_csrs()
    actions = {rec.node: rec.action for rec in r.records}
    assert actions["uccx-sub"] is Action.REUSED
    assert Action.GENERATED not in actions.values()
    results = rerun.run_all()
    assert results[-1].ok, results[-1]


def test_restart_without_started_banner(session, mock):
    mock.faults.set("restart_no_started", True, node="uccx-pub")
    with session.on(session.site.publisher) as t:
        t.restart_service("Cisco Tomcat", timeout=30)
    assert session.wait_serving(session.site.publisher, timeout=30) >= 0


def test_cop_missing_on_sftp(session, mock):
    mock.faults.set("cop_missing", "*")
    with pytest.raises(CommandError) as e:
        RsaOnly(session, "disable").install_cops()
    assert "was not installed" in str(e.value) and "SFTP" in str(e.value)


def test_waiting_for_ca_then_resume(session, tmp_path):
    ca = get_adapter("files", outbox=tmp_path / "out", inbox=tmp_path / "in")
    proc = CaSigned(session, ca)
    proc.generate_csrs()
    csrs = proc.csrs
    with pytest.raises(WaitingForCA) as e:
        proc.sign()
    assert "uccx-pub" in str(e.value) and str(tmp_path / "in") in str(e.value)
    # the CA answers: sign the outbox CSRs with a lab CA and drop them in the inbox
    lab = get_adapter("lab", directory=tmp_path / "labca")
    (tmp_path / "in").mkdir(exist_ok=True)
    for name, csr in csrs.items():
        lab.submit(name, csr)
        s = lab.collect(name, csr)
        from cryptography.hazmat.primitives.serialization import Encoding
        (tmp_path / "in" / f"{name}-signed.pem").write_bytes(
            b"".join(c.public_bytes(Encoding.PEM) for c in (s.certificate, *s.chain)))
    # rerun: same CSRs (not regenerated), certificates collected
    rerun = CaSigned(session, ca)
    assert {rec.action for rec in rerun.generate_csrs().records} == {Action.REUSED}
    assert rerun.run_all()[-1].ok


def test_two_concurrent_runs_on_one_site(mock, tmp_path):
    site = load_site(mock.site_file)
    with SiteSession(site, workdir=tmp_path / "a"):
        with pytest.raises(SiteLockedError):
            SiteSession(site, workdir=tmp_path / "b")
    # released afterwards
    with SiteSession(site, workdir=tmp_path / "c"):
        pass


def test_two_nodes_driven_at_once(session):
    results = {}

    def read(node):
        with session.on(node) as t:
            results[node.name] = t.version()

    threads = [threading.Thread(target=read, args=(n,)) for n in session.nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 3


def test_preflight_advice_reads_the_inventory(session):
    pf = preflight.Preflight(session)
    # fresh mock: self-signed tomcat everywhere
    assert pf.advise(ca_capability="ec").scenario == "rsa_only"
    assert pf.advise(ca_capability="ec", agents_may_accept_certificates=True).scenario == \
        "self_signed"
    adv = pf.advise(ca_capability="ec", app_certs_ca_signed=True)
    assert adv.scenario == "ca_signed"
    # the next runbook and its exact parameters, and the same as a command line
    site = session.site
    assert adv.next_step == (f"next: runbooks/ca_signed.ipynb with site_file={str(site.path)!r}, "
                             f"confirm={site.name!r}, ca='files'")
    assert adv.command == (f"cckit run ca_signed --site {site.path} -p confirm {site.name} "
                           "-p ca files")
    assert adv.next_step in display.text(adv) and adv.command in display.html(adv)


def test_trust_on_first_use_only_when_asked(mock, tmp_path):
    site = load_site(mock.site_file)
    site.known_hosts.write_text("")
    with SiteSession(site, workdir=tmp_path / "a", trust_on_first_use=True) as s:
        assert s.transport(site.publisher).version().version.startswith("11.5")
    assert "[127.0.0.1]" in site.known_hosts.read_text()  # the key was recorded
    with SiteSession(site, workdir=tmp_path / "b") as s:  # now known: strict check passes
        s.transport(site.publisher).version()


def test_changed_host_key_is_refused(mock, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    site = load_site(mock.site_file)
    lines = site.known_hosts.read_text().splitlines()
    port = site.publisher.ssh_port
    other = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    forged = [f"[127.0.0.1]:{port} {other}" if line.startswith(f"[127.0.0.1]:{port} ")
              else line for line in lines]
    assert forged != lines and other.startswith("ssh-ed25519")
    site.known_hosts.write_text("\n".join(forged) + "\n")
    with SiteSession(site, workdir=tmp_path / "run") as s, \
            pytest.raises(HostKeyError, match="has CHANGED"):
        s.transport(site.publisher)


def test_reboot_waits_until_the_node_is_back(session):
    node = session.site.subscribers[0]
    with session.on(node) as t:
        t.reboot(timeout=60)
        assert t.version().version.startswith("11.5")  # logged in again
    assert session.wait_serving(node, timeout=30) >= 0


def test_trust_found_by_file_name_when_the_node_prints_no_pem(session, tmp_path, monkeypatch):
    """Where `show cert trust FILE` prints details only, <CN>_<serial> names the file."""
    from cckit.vos.ssh import SSHTransport

    ca = get_adapter("lab", directory=tmp_path / "labca")
    proc = through_trust(CaSigned(session, ca))

    def details_only(self, store, file):
        raise CommandError(f"'show cert {store} {file}' printed no certificate")

    monkeypatch.setattr(SSHTransport, "get_certificate", details_only)
    again = proc.upload_trust()
    assert {r.action for r in again.records} == {Action.ALREADY_PRESENT}
    assert proc.upload_identities().records[0].action is Action.IMPORTED


def test_a_full_tomcat_trust_is_not_read_file_by_file_each_time(mock, session, tmp_path):
    """A real node's tomcat-trust holds dozens of certificates and every `show cert trust`
    is a CLI command of its own: the CA's files are found by name, not by reading the whole
    store again after each import and for each identity."""
    from tests import certfactory as cf

    pub = session.site.publisher
    with session.on(pub) as t:  # other CAs, as a real node's tomcat-trust holds
        for i in range(30):
            t.upload_trust(cf.make_root(f"Other Trusted CA {i:02d}").cert)
        stored = len(t.list_certificates("trust"))
    transcript = tmp_path / "run" / "transcripts" / "uccx-pub.log"
    seeded = len(transcript.read_text())
    through_trust(CaSigned(session, get_adapter("lab", directory=tmp_path / "labca")))
    proc = CaSigned(session, get_adapter("lab", directory=tmp_path / "labca"))
    proc.generate_csrs(), proc.sign(), proc.gate()
    assert {r.action for r in proc.upload_trust().records} == {Action.ALREADY_PRESENT}
    assert {r.action for r in proc.upload_identities().records} == {Action.IMPORTED}
    reads = transcript.read_text()[seeded:].count("\n> show cert trust ")
    # one full read to learn that the new CA is absent; after that, its own files only
    assert stored <= reads < stored + 12, (reads, stored)


# --------------------------------------------------------------------------- real-node CLI


WIZARDS = {
    "11.5": "11.5",
    "12.5": {"uccx-pub": "12.5-publisher", "uccx-sub": "12.5-subscriber",
             "sm": "12.5-publisher"},
    "open-session": "open-session",
    "remembered-defaults": "remembered-defaults",
    "slow-download": "slow-download",
}


@pytest.mark.parametrize("wizard", list(WIZARDS))
def test_rsa_only_cop_install_under_each_wizard(tmp_path, wizard, monkeypatch):
    """The COP install copes with every wizard a real node asks (mock README, "Wizard
    variants"); a silent download is not taken for a question."""
    import cckit.vos.ssh
    from cckit import credentials

    monkeypatch.setattr(cckit.vos.ssh, "QUESTION_WAIT", 0.3)
    monkeypatch.setattr(credentials, "_known", set())  # no short secrets of other tests
    with running_site(tmp_path / "mock", restart_seconds=0.1, wizard=WIZARDS[wizard],
                      download_seconds=1.0) as mock:
        site = load_site(mock.site_file)
        with SiteSession(site, workdir=tmp_path / "run", tls_timeout=3) as s:
            disable = RsaOnly(s, "disable")
            r = disable.install_cops()
            assert {rec.action for rec in r.records} == {Action.INSTALLED}
            disable.restart()
            assert disable.verify().ok
            # rerun: `show version active` lists the COPs without .sgn; nothing is reinstalled
            again = disable.install_cops()
            assert {rec.action for rec in again.records} == {Action.ALREADY_INSTALLED}
        log = (tmp_path / "run" / "transcripts" / "uccx-sub.log").read_text()
    assert "utils system upgrade cancel" in log and "> ********" in log
    assert mock.sftp_password not in log and mock.password not in log


def test_an_unknown_wizard_question_fails_at_once_naming_it(tmp_path, monkeypatch):
    from cckit import credentials

    monkeypatch.setattr(credentials, "_known", set())  # no short secrets of other tests
    with running_site(tmp_path / "mock", wizard={"uccx-pub": "unknown-question"}) as mock:
        site = load_site(mock.site_file)
        with SiteSession(site, workdir=tmp_path / "run", nodes=["uccx-pub"]) as s:
            t = time.monotonic()
            with pytest.raises(CommandError) as e:
                RsaOnly(s, "disable").install_cops()
            assert time.monotonic() - t < 15  # the default wait, not the 900 s install timeout
    msg = str(e.value)
    assert "the node asked 'Enable the upgrade readiness check (yes/no) [no]:'" in msg
    assert "nothing was answered" in msg
    log = (tmp_path / "run" / "transcripts" / "uccx-pub.log").read_text()
    assert log.rstrip().endswith("| Enable the upgrade readiness check (yes/no) [no]:")


def test_slow_cli_start_keyboard_interactive_and_the_pager(tmp_path):
    """The first admin: may take long (login_timeout, not the command timeout); a node may
    offer keyboard-interactive only; where paging stays on, the pager is answered."""
    from cckit.credentials import Secret
    from cckit.vos.ssh import SSHTransport

    with running_site(tmp_path / "mock", cli_startup_seconds=1.0, keyboard_interactive=True) as m:
        site = load_site(m.site_file)
        with SiteSession(site, workdir=tmp_path / "run", nodes=["sm"], timeout=0.5) as s:
            assert s.transport(site.node("sm")).version().version.startswith("11.5")
        node = site.node("uccx-pub")
        with SSHTransport(node, "admin", Secret(m.password), known_hosts=site.known_hosts,
                          pagination_off=False) as t:
            services = t.service_status()
            assert len(services) > 40 and services["Cisco Tomcat"] == "STARTED"
            cert = t.get_certificate("own", "tomcat/tomcat.pem")  # details + PEM: pages
            assert certs.describe(cert).key_type == "RSA"
            assert ">key space" in t.transcript.text()
