"""Fleet certificate inventory (issue 13): a read-only sweep of seeded mock sites."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from cckit import topology
from cckit.fleet import Code, Policy, Severity, parse_notifier, run_sweep
from cckit.fleet.collect import ReadOnlyError, ReadOnlyNode
from cckit.vosmock import journal
from cckit.vosmock.seed import DEFECTS
from cckit.vosmock.testing import running_site, running_sites

pytestmark = pytest.mark.timeout(300)

#: each seeded defect -> the one finding it must give: (code, severity, node, unit, runbook)
EXPECTED = {
    "expiring": (Code.EXPIRING, Severity.HIGH, "uccx-pub", "tomcat-ECDSA", "ca_signed"),
    "expired": (Code.EXPIRED, Severity.CRITICAL, "uccx-sub", "tomcat-ECDSA", "ca_signed"),
    "ecdsa-self-signed": (Code.ECDSA_SELF_SIGNED, Severity.HIGH, "uccx-pub", "tomcat-ECDSA",
                          "ca_signed"),
    "rsa-signed-ecdsa": (Code.RSA_SIGNED_ECDSA, Severity.CRITICAL, "sm", "tomcat-ECDSA",
                         "rsa_only"),
    "no-client-auth": (Code.NO_CLIENT_AUTH, Severity.HIGH, "uccx-pub", "tomcat", ""),
    "trust-missing-ca": (Code.TRUST_MISSING_CA, Severity.HIGH, "sm", "tomcat-trust",
                         "ca_signed"),
    "port-mismatch": (Code.PORT_MISMATCH, Severity.MEDIUM, "uccx-sub", "tomcat-ECDSA",
                      "ca_signed"),
    "disable-cop-ca-signed": (Code.DISABLE_COP_CA_SIGNED, Severity.LOW, "sm", "tomcat-ECDSA",
                              "rsa_only"),
    "rollback-cop-self-signed": (Code.ROLLBACK_COP_SELF_SIGNED, Severity.MEDIUM, "uccx-pub",
                                 "tomcat-ECDSA", "ca_signed"),
    "old-csr": (Code.OLD_CSR, Severity.LOW, "uccx-pub", "tomcat-ECDSA", "ca_signed"),
}
#: and every site but the one at 12.5 (no tomcat-ECDSA): agents' browsers are shown a
#: self-signed tomcat-ECDSA on Live Data or chat where no other finding explains it
AGENTS = (Code.AGENTS_PROMPTED, Severity.MEDIUM, "", "tomcat-ECDSA", "preflight")


def _expected(defects: list[str]) -> list[tuple]:
    return sorted([EXPECTED[d] for d in defects]
                  + ([] if "no-client-auth" in defects else [AGENTS]))


def _state(state_dir: Path) -> dict[str, bytes]:
    """Every file of every node, but the journal (which the sweep must only append to)."""
    return {str(p.relative_to(state_dir)): p.read_bytes() for p in sorted(state_dir.rglob("*"))
            if p.is_file() and p.name != journal.JOURNAL}


class _Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def webhook():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    server.shutdown()


@pytest.fixture(scope="module")
def smtp():
    aiosmtpd = pytest.importorskip("aiosmtpd.controller")
    from aiosmtpd.handlers import Message

    class Inbox(Message):
        def __init__(self):
            super().__init__()
            self.messages = []

        def handle_message(self, message):
            self.messages.append(message)

    from cckit.vosmock.site import free_ports

    inbox, port = Inbox(), free_ports(1)[0]
    controller = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"127.0.0.1:{port}", inbox.messages
    controller.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, webhook, smtp):
    """One of each seeded defect (+ a clean site), swept twice: 40 days ago and now."""
    root = tmp_path_factory.mktemp("fleet")
    n = len(DEFECTS) + 1
    with running_sites(root / "mock", n, seed="fleet", site_dir=root / "sites") as sites:
        before = _state(root / "mock" / "state")
        notifiers = [parse_notifier(f"webhook={webhook[0]}"),
                     parse_notifier(f"smtp={smtp[0]}?to=noc@example.com&from=cckit@example.com")]
        first = run_sweep([root / "sites"], out=root / "night-1", state=root / "state.json",
                          now=dt.datetime.now(dt.UTC) - dt.timedelta(days=40),
                          notifiers=notifiers)
        sent_first = (len(webhook[1]), len(smtp[1]))
        second = run_sweep([root / "sites"], out=root / "out", state=root / "state.json",
                           notifiers=notifiers, concurrency=3)
        after = _state(root / "mock" / "state")
        yield {"root": root, "sites": sites, "first": first, "sweep": second,
               "before": before, "after": after, "sent_first": sent_first,
               "webhook": webhook[1], "smtp": smtp[1]}


def test_each_seeded_defect_is_reported_once_with_its_severity_and_runbook(fleet):
    sweep = fleet["sweep"]
    seeded = {s.name: json.loads((s.state_dir / "seed.json").read_text())["defects"]
              for s in fleet["sites"]}
    assert sorted(d for ds in seeded.values() for d in ds) == sorted(DEFECTS)
    got = {}
    for f in sweep.findings:
        got.setdefault(f.site, []).append((f.code, f.severity, f.node, f.unit, f.runbook))
    want = {site: _expected(ds) for site, ds in seeded.items()}
    assert {site: sorted(fs) for site, fs in got.items()} == want
    assert all(f.fix and f.message for f in sweep.findings)
    assert not any(n.error for n in sweep.nodes)
    assert sweep.summary().ok


def test_the_sweep_changed_nothing_and_sent_only_read_commands(fleet):
    assert fleet["after"] == fleet["before"]
    entries = journal.read(fleet["root"] / "mock" / "state")
    commands = {e["command"] for e in entries}
    assert entries and all(topology.read_only_command(c) for c in commands), commands
    assert {"show version active", "show cert list own", "show cert list trust",
            "show csr list own"} <= commands
    assert {e["via"] for e in entries} == {"cli"}


def test_read_only_node_refuses_every_change():
    class Transport:
        node = type("N", (), {"name": "uccx-pub"})()
        sent: ClassVar[list[str]] = []

        def run(self, command, **kw):
            self.sent.append(command)
            return ""

        def version(self):
            return self.run("show version active")

        def upload_trust(self, cert):
            return self.run("set cert import trust tomcat")

    t = Transport()
    ro = ReadOnlyNode(t)
    ro.version()
    for name in ("upload_trust", "generate_csr", "upload_identity", "restart_service",
                 "install_cop", "reboot"):
        with pytest.raises(ReadOnlyError, match="only reads"):
            getattr(ro, name)
    with pytest.raises(ReadOnlyError, match="refusing to send 'set cert import trust tomcat'"):
        t.upload_trust(None)  # even the transport itself: its CLI is guarded
    assert t.sent == ["show version active"]


def test_rows_hold_every_certificate_with_its_facts(fleet):
    sweep = fleet["sweep"]
    df = sweep.frame("certificates")
    assert len(df) == len(sweep.certs) > 100
    assert set(df["store"]) == {"own", "trust"}
    own = df[df["store"] == "own"]
    # tomcat and tomcat-ECDSA on each node, but the no-client-auth site's three nodes run
    # 12.5: no tomcat-ECDSA there (Cisco 118855)
    assert len(own) == 2 * len(sweep.nodes) - 3
    row = own[(own["site"] == "site-005") & (own["node"] == "uccx-pub") &
              (own["unit"] == "tomcat")].iloc[0]
    assert (row["server_auth"], row["client_auth"], row["self_signed"]) == (True, False, False)
    assert row["chain"] == "complete" and row["key_type"] == "RSA"
    ecdsa = own[(own["site"] == "site-011") & (own["unit"] == "tomcat-ECDSA")]
    assert set(ecdsa["key_detail"]) == {"secp384r1"} and set(ecdsa["chain"]) == {"self-signed"}
    assert all("8443 ecdsa" in p for p in ecdsa[ecdsa["node"] != "sm"]["presented"])
    gap = own[(own["site"] == "site-006") & (own["node"] == "sm") &
              (own["unit"] == "tomcat-ECDSA")].iloc[0]
    assert gap["chain"].startswith("incomplete: vosmock seed EC root CA site-006")
    ports = sweep.frame("ports")
    refused = ports[ports["status"] != "ok"]
    assert set(ports["client"]) == {"browser", "ecdsa", "rsa"}
    at_12_5 = refused[refused["site"] == "site-005"]  # no tomcat-ECDSA at 12.5: no ECDSA
    assert len(at_12_5) == 12 and set(at_12_5["client"]) == {"ecdsa"}
    assert refused[refused["site"] != "site-005"][["site", "node", "client", "status"]
                                                  ].values.tolist() == [
        ["site-008", "sm", "ecdsa", "handshake_failed"]] * 2  # the disable COP is in effect
    # a browser: tomcat-ECDSA on Live Data (12015) and chat (SocialMiner 7443) only
    shown = ports[(ports["client"] == "browser") & ports["key_type"].str.startswith("EC")]
    assert set(zip(shown["node"], shown["port"], shown["serves"], strict=True)) == {
        ("uccx-pub", 12015, "Live Data"), ("uccx-sub", 12015, "Live Data"),
        ("sm", 7443, "chat and email")}
    nodes = sweep.frame("nodes")
    assert nodes.loc[nodes["site"] == "site-008", "ecdsa_cop"].tolist() == ["", "", "disable"]
    csr = sweep.frame("csrs")
    assert csr[["site", "node", "unit", "age_days"]].values.tolist() == [
        ["site-010", "uccx-pub", "tomcat-ECDSA", 40]]


def test_files_prometheus_and_parquet(fleet):
    import pandas as pd
    from prometheus_client.parser import text_string_to_metric_families

    out = fleet["root"] / "out"
    sweep = fleet["sweep"]
    for name in ("inventory.csv", "inventory.parquet", "findings.csv", "nodes.csv",
                 "ports.csv", "csrs.csv", "dashboard.html", "cckit.prom"):
        assert (out / name).exists(), name
    assert len(pd.read_parquet(out / "inventory.parquet")) == len(sweep.certs)
    n = len(sweep.findings)
    assert n == len(DEFECTS) + len(fleet["sites"]) - 1  # + the agents' finding per site
    assert len(pd.read_csv(out / "findings.csv")) == n
    families = {f.name: f for f in text_string_to_metric_families(
        (out / "cckit.prom").read_text())}
    expiry = families["cckit_certificate_expiry_seconds"].samples
    assert len(expiry) == len({(c.site, c.node, c.unit, c.serial) for c in sweep.certs})
    assert {"site", "node", "unit", "serial"} == set(expiry[0].labels)
    findings = families["cckit_finding"].samples
    assert sum(s.value for s in findings) == n
    assert {s.labels["severity"] for s in findings} == {"critical", "high", "medium", "low"}
    (last,) = families["cckit_last_sweep_timestamp_seconds"].samples
    assert abs(last.value - sweep.now.timestamp()) < 1
    secrets = [s.password for s in fleet["sites"]]
    for p in out.iterdir():
        if p.is_file():
            assert not any(s.encode() in p.read_bytes() for s in secrets), p


def test_parquet_falls_back_to_csv_without_pyarrow(fleet, tmp_path, monkeypatch):
    from cckit.fleet.report import write_outputs

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    files = write_outputs(fleet["sweep"], tmp_path)
    assert "inventory.csv" in files and "inventory.parquet" not in files


def test_one_message_per_new_finding_not_every_sweep(fleet):
    first, second = fleet["first"], fleet["sweep"]
    # night 1 (40 days ago): everything was new; the old CSR was not old yet
    assert fleet["sent_first"] == (len(first.findings), len(first.findings))
    assert Code.OLD_CSR not in {f.code for f in first.findings}
    # tonight: only what night 1 did not report, once per notifier
    new_keys = {f.key for f in second.new}
    assert {f.code for f in second.new} >= {Code.OLD_CSR}
    assert new_keys == {f.key for f in second.findings} - {f.key for f in first.findings}
    hooks = fleet["webhook"][len(first.findings):]
    assert sorted(h["key"] for h in hooks) == sorted(new_keys)
    mails = fleet["smtp"][len(first.findings):]
    assert len(mails) == len(new_keys)
    old_csr = next(h for h in hooks if h["code"] == "old-csr")
    assert old_csr["runbook"] == "ca_signed" and old_csr["severity"] == "low"
    assert any("old-csr" in m["Subject"] or "CSR" in m["Subject"] for m in mails)
    assert all(m["To"] == "noc@example.com" for m in mails)
    assert not second.problems


def test_a_failing_notifier_keeps_its_findings_new(fleet, tmp_path):
    root = fleet["root"]
    shutil.copy(root / "state.json", tmp_path / "state.json")
    state = json.loads((tmp_path / "state.json").read_text())
    key = next(iter(state["findings"]))
    state["findings"].pop(key)
    (tmp_path / "state.json").write_text(json.dumps(state))
    dead = parse_notifier("webhook=http://127.0.0.1:9/none")
    s = run_sweep([root / "sites" / "site-001.yaml", root / "sites" / "site-010.yaml"],
                  state=tmp_path / "state.json", notifiers=[dead])
    assert s.problems and "webhook http://127.0.0.1:9/none" in s.problems[0]
    again = json.loads((tmp_path / "state.json").read_text())
    unsent = [k for k, v in again["findings"].items() if not v["notified"]]
    assert unsent == [f.key for f in s.new]


def test_notifier_specs():
    assert parse_notifier("webhook=https://hooks.example.com/x").kind == "webhook"
    n = parse_notifier("smtp=mail.example.com:2525?to=a@example.com&to=b@example.com")
    assert (n.target, [v for k, v in n.options if k == "to"]) == (
        "mail.example.com:2525", ["a@example.com", "b@example.com"])
    from cckit.errors import InputError

    for bad in ("webhook=ftp://x", "smtp=host", "smtp=h?to=a@b&password=hunter2", "pager=1"):
        with pytest.raises(InputError) as e:
            parse_notifier(bad)
        assert "hunter2" not in str(e.value)


def test_policy_thresholds():
    p = Policy((90, 30, 60))
    assert [p.expiry_severity(d) for d in (-1, 0, 30, 31, 60, 90, 91)] == [
        Severity.CRITICAL, Severity.HIGH, Severity.HIGH, Severity.MEDIUM, Severity.MEDIUM,
        Severity.LOW, None]
    assert Policy((7,)).expiry_severity(7) is Severity.HIGH


def test_unreachable_node_is_a_finding_and_the_rest_is_read(tmp_path):
    with running_site(tmp_path / "m", restart_seconds=0) as site:
        site.faults.set("down", node="sm")
        s = run_sweep([site.site_file], tls_timeout=1, timeout=3)
    f, agents = s.findings
    assert (f.code, f.severity, f.node, f.runbook) == (Code.NOT_INVENTORIED, Severity.HIGH,
                                                      "sm", "preflight")
    assert agents.code == Code.AGENTS_PROMPTED and agents.ident == "uccx-pub uccx-sub"
    assert "uccx-pub 12015 (Live Data)" in agents.message
    assert {n.node for n in s.nodes if not n.error} == {"uccx-pub", "uccx-sub"}
    assert not s.summary().ok


def test_cli_inventory(fleet, tmp_path):
    root = fleet["root"]
    r = subprocess.run([sys.executable, "-m", "cckit", "inventory", "--sites",
                        str(root / "sites" / "site-002.yaml"), str(root / "sites" /
                                                                  "site-011.yaml"),
                        "--out", str(tmp_path / "o"), "-q", "--fail-on", "critical",
                        "--prom-file", str(tmp_path / "textfile" / "cckit.prom")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 4, r.stdout + r.stderr
    assert "2 site(s), 6 node(s)" in r.stdout and "expired" in r.stdout
    assert (tmp_path / "textfile" / "cckit.prom").exists()
    r = subprocess.run([sys.executable, "-m", "cckit", "inventory", "--sites",
                        str(root / "sites"), "--out", str(tmp_path / "p"), "--notify",
                        "pager=1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "is not webhook=URL" in r.stderr
    assert "Traceback" not in r.stderr


def test_sweep_on_a_dask_local_cluster(fleet, tmp_path):
    distributed = pytest.importorskip("distributed")
    root = fleet["root"]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  dashboard_address=None) as cluster:
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        s = run_sweep([root / "sites" / "site-001.yaml", root / "sites" / "site-004.yaml"],
                      executor=address, concurrency=2)
    assert [(f.site, f.code) for f in s.findings] == [
        ("site-004", Code.RSA_SIGNED_ECDSA), ("site-001", Code.EXPIRING),
        ("site-001", Code.AGENTS_PROMPTED), ("site-004", Code.AGENTS_PROMPTED)]


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_dashboard_opens_in_chromium_without_errors(fleet):
    sync_api = pytest.importorskip("playwright.sync_api")
    page_file = fleet["root"] / "out" / "dashboard.html"
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        try:
            page = browser.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(page_file.as_uri())
            assert page.locator("svg#timeline").is_visible()
            assert page.locator("svg#timeline circle.cert").count() > 20
            assert page.locator("button.badge").count() == len(DEFECTS) + 1
            rows = page.locator("#findings tbody tr")
            assert rows.count() == len(fleet["sweep"].findings)
            page.select_option("#severity-findings", "critical")
            assert page.locator("#findings tbody tr:visible").count() == 2
            page.select_option("#severity-findings", "")
            page.click("button.badge[data-site='site-005']")  # at 12.5: its one finding
            assert page.locator("#findings tbody tr:visible").count() == 1
            page.fill("#filter-findings", "")
            page.dispatch_event("#filter-findings", "input")
            page.click("#findings thead th:nth-child(3)")  # sort by site
            first = page.locator("#findings tbody tr").first.locator("td").nth(2).inner_text()
            assert first == "site-001"
        finally:
            browser.close()
    assert errors == []
