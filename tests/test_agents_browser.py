"""What agents' browsers are shown (issue 23): a client offering RSA and ECDSA gets, per web
server, what Cisco 210528 tabulates; cckit's browser column says so, OpenSSL and Chromium
agree, and after ca_signed Live Data and chat present the CA-signed tomcat-ECDSA."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from cckit import certs, topology
from cckit.ca import get_adapter
from cckit.procedures import SiteSession
from cckit.procedures.ca_signed import CaSigned
from cckit.procedures.renew_tomcat import RenewTomcat
from cckit.sites import load_site
from cckit.vosmock.testing import running_site
from tests import certfactory, chromium

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[1]
#: Cisco 210528 on a fresh 11.5 site (self-signed tomcat-ECDSA): the browser's key type
FRESH = {("uccx-publisher", 12015): "EC", ("uccx-subscriber", 12015): "EC",
         ("socialminer", 7443): "EC"}


def _openssl(port: int, *args: str) -> str | None:
    """The sha256 of the leaf ``openssl s_client`` is shown (None: no certificate)."""
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                         input="", capture_output=True, text=True, timeout=20).stdout
    pem = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", out, re.S)
    if pem is None:
        return None
    from cryptography import x509

    return certs.fingerprint_sha256(x509.load_pem_x509_certificate(pem.group(0).encode()))


def _probe_json(ports: list[int]) -> dict:
    r = subprocess.run([sys.executable, "-m", "cckit", "probe", "--json",
                        *(f"127.0.0.1:{p}" for p in ports)],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_mock_serve_probe_json_and_openssl_agree(tmp_path):
    """On a fresh `cckit mock serve` site a both-offering client gets RSA from UCCX 8443,
    8445, 8444, 7443 and SocialMiner 443 and the self-signed tomcat-ECDSA from UCCX 12015 and
    SocialMiner 7443; `cckit probe --json` agrees with `openssl s_client` on all 12 ports.
    (After `cckit run ca_signed`: tests/test_runbooks.py, test_run_ca_signed_...)"""
    site_file = tmp_path / "site.yaml"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cckit", "mock", "serve", "--state-dir", str(tmp_path / "st"),
         "--site-file", str(site_file), "--restart-seconds", "0.2",
         "--cli-startup-seconds", "0.05"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = proc.stdout.readline().decode()
        assert "vosmock: site" in line, proc.stderr.read1().decode()
        doc = yaml.safe_load(site_file.read_text())
        where = {p: (n["role"], real) for n in doc["nodes"] for real, p in n["web_ports"].items()}
        assert sorted(real for _, real in where.values()) == sorted(
            [8443, 8445, 8444, 7443, 12015] * 2 + [443, 7443])
        got = _probe_json(list(where))
        # OpenSSL: its defaults (a browser's offer), then ECDSA-only and RSA-only
        kinds = {"browser": (), "ecdsa_only": ("-tls1_2", "-sigalgs", "ECDSA+SHA256:ECDSA+SHA384"),
                 "rsa_only": ("-tls1_2", "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256")}
        asks = [(port, kind) for port in where for kind in kinds]
        with ThreadPoolExecutor(4) as pool:
            openssl = dict(zip(asks, pool.map(lambda a: _openssl(a[0], *kinds[a[1]]), asks),
                               strict=True))
        for port, (role, real) in where.items():
            views = got[f"127.0.0.1:{port}"]
            assert views["browser"]["key_type"] == FRESH.get((role, real), "RSA"), (role, real)
            assert views["ecdsa_only"]["key_type"] == "EC"
            assert views["rsa_only"]["key_type"] == "RSA"
            assert views["browser"]["tls"] == "1.2"  # UCCX/SocialMiner 11.x: TLS <= 1.2
            for kind in kinds:
                assert views[kind]["sha256"] == openssl[port, kind], (role, real, kind)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


@pytest.mark.slow
@chromium.needs_chromium
def test_chromium_is_shown_the_browser_column_then_every_port_loads(tmp_path):
    """Debian's chromium, default settings, a fresh profile: before any change it is shown,
    port by port, exactly what cckit's browser column says (and 210528 predicts); with the
    RSA tomcat CA-signed, Live Data and chat are the ports it blocks (the self-signed
    tomcat-ECDSA); after ca_signed, trusting only the lab root, every port loads."""
    with running_site(tmp_path / "mock", restart_seconds=0.2) as mock, \
            SiteSession(load_site(mock.site_file), workdir=tmp_path / "run",
                        tls_timeout=3) as session:
        nodes = session.nodes
        hosts = sorted({n.fqdn for n in nodes})
        urls = {(n.name, wp.port): f"https://{n.fqdn}:{wp.connect}/"
                for n in nodes for wp in n.web_ports}
        assert len(urls) == 12
        roles = {n.name: n.role for n in nodes}

        def column() -> dict[tuple[str, int], object]:
            return {(v.node, v.port): v for v in session.presented_all(("browser",))}

        before = column()
        empty = tmp_path / "home-empty"
        chromium.nssdb(empty)
        shown = chromium.load(empty, list(urls.values()), hosts)
        for key, url in urls.items():
            v, s = before[key], shown[url]
            assert "ERR_CERT_AUTHORITY_INVALID" in s.outcome, (key, s)  # all self-signed
            assert s.sha256 == v.sha256, key  # exactly the browser column's certificate
            predicted = topology.spec(roles[key[0]]).to_browser(
                key[1], topology.EcdsaState.SELF_SIGNED)
            assert v.cert.key_type == topology.KEY_TYPES[predicted], key
            assert s.key_exchange == ("ECDHE_ECDSA" if predicted == topology.ECDSA_UNIT
                                      else "ECDHE_RSA"), key

        ca = get_adapter("lab", directory=tmp_path / "labca")
        root = tmp_path / "root.pem"
        root.write_bytes(certfactory.pem(ca.root_certificate))
        assert RenewTomcat(session, ca).run_all()[-1].ok  # the RSA tomcat CA-signed first
        home = tmp_path / "home-root"
        chromium.nssdb(home, root)
        loads = chromium.load(home, list(urls.values()), hosts)
        blocked = {key for key, url in urls.items() if loads[url].outcome != "ok"}
        assert blocked == {(n, p) for n, p in urls if (roles[n], p) in FRESH}

        proc = CaSigned(session, ca)
        assert proc.run_all()[-1].ok
        after = column()
        loads = chromium.load(home, list(urls.values()), hosts)
        assert {key: loads[url].outcome for key, url in urls.items()} == dict.fromkeys(
            urls, "ok")
        expected = proc.expected()
        for key, url in urls.items():
            assert loads[url].sha256 == after[key].sha256, key
            if (roles[key[0]], key[1]) in FRESH:
                assert loads[url].sha256 == expected[key[0]], key  # the CA-signed ECDSA
