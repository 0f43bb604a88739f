"""The VOS mock, driven with real outside clients: OpenSSH `ssh -tt` and `openssl s_client`."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from cckit.vosmock.testing import (
    SIGALGS_ECDSA,
    SIGALGS_RSA,
    SshCli,
    run_ssh,
    running_site,
    ssh_command,
    ssh_env,
    tls_probe,
)

pytestmark = pytest.mark.timeout(120)


# ------------------------------------------------------------------------------ a tiny CA
class CA:
    def __init__(self, cn: str = "Lab EC Root CA", key=None, issuer: CA | None = None):
        self.key = key or ec.generate_private_key(ec.SECP384R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        signer = issuer or self
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(signer.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(signer.key, _hash(signer.key))
        )

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, public_key, cn: str = "leaf", signer_key=None) -> str:
        now = dt.datetime.now(dt.UTC)
        key = signer_key or self.key
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), False)
            .sign(key, _hash(key))
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign_csr(self, csr_pem: str) -> str:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        return self.sign(csr.public_key(), cn)


def _hash(key):
    return hashes.SHA384() if isinstance(key, ec.EllipticCurvePrivateKey) else hashes.SHA256()


def pem_block(text: str, kind: str = "CERTIFICATE") -> str:
    m = re.search(rf"-----BEGIN {kind}-----.*?-----END {kind}-----", text, re.DOTALL)
    assert m, text
    return m.group(0) + "\n"


def cli(site, node: str = "uccx-pub", paging: bool = False) -> SshCli:
    """A logged-in `ssh -tt` session; like public tools, it turns paging off first."""
    s = SshCli(site.nodes[node].ssh_port, site.known_hosts, site.password)
    s.login()
    if not paging:
        out = s.cmd("set cli pagination off")
        assert out.strip().endswith("Automatic pagination is turned off")
    return s


def ssh(site, node: str, commands: str):
    return run_ssh(
        site.nodes[node].ssh_port,
        site.known_hosts,
        site.password,
        "set cli pagination off\n" + commands + "\nquit\n",
    )


def import_cert(s: SshCli, command: str, pem: str) -> str:
    s.send(command + "\n")
    s.expect("Paste the Certificate and Hit Enter")
    s.send(pem)
    return s.expect(r"(?m)^admin:")


def gen_csr(s: SshCli, unit: str = "tomcat-ECDSA") -> str:
    out = s.cmd(f"set csr gen {unit}")
    assert f"Successfully Generated CSR for {unit}." in out
    return pem_block(s.cmd(f"show csr own {unit}/{unit}.csr"), "CERTIFICATE REQUEST")


def trust_name(s: SshCli, cn: str) -> str:
    listing = s.cmd("show cert list trust")
    m = re.search(rf"(tomcat-trust/{re.escape(cn)}_[0-9a-f]+\.pem)", listing)
    assert m, listing
    return m.group(1)


def upgrade(s: SshCli, site, filename: str | None, password: str | None = None) -> str:
    """Walk the `utils system upgrade initiate` wizard; returns the text after the file list."""
    s.send("utils system upgrade initiate\n")
    s.expect(r"1\) Remote Filesystem via SFTP")
    s.expect(r'Please select an option \(1 - 3 or "q" \): ')
    s.send("1\n")
    s.expect("Directory: ")
    s.send("/cop\n")
    s.expect("Server: ")
    s.send("127.0.0.1\n")
    s.expect("User Name: ")
    s.send(f"{site.sftp_username}\n")
    s.expect("Password: ")
    s.send(f"{password or site.sftp_password}\n")
    s.expect(r"Please enter SMTP Host Server \(optional\): ")
    s.send("\n")
    out = s.expect(r'(?m)(Please select an option \(1 - \d+ or "q" \): |^admin:)')
    if out.endswith("admin:"):
        return out
    assert filename in out, out
    num = re.search(rf"(\d+)\) {re.escape(filename)}", out).group(1)
    s.send(f"{num}\n")
    out = s.expect(r"(?m)(Start installation \(yes/no\): |^admin:)")
    if out.endswith("admin:"):
        return out
    s.send("yes\n")
    return out + s.expect(r"(?m)^admin:", timeout=30)


def presented(port: int, tls: str = "1.2"):
    return tls_probe(port, SIGALGS_ECDSA, tls), tls_probe(port, SIGALGS_RSA, tls)


# ------------------------------------------------------------------------------ site file
def test_site_file_is_loadable_and_never_holds_a_secret(mock_site):
    doc = yaml.safe_load(mock_site.site_file.read_text())
    assert doc["site"] and doc["domain"] == "cc.example.com"
    assert [n["role"] for n in doc["nodes"]] == ["uccx-publisher", "uccx-subscriber", "socialminer"]
    for cred in doc["credentials"].values():
        ref = cred["password"]
        assert set(ref) == {"file"}
        p = Path(ref["file"])
        assert p.is_absolute() and stat.S_IMODE(p.stat().st_mode) == 0o600
    assert Path(doc["credentials"]["os-admin"]["password"]["file"]).read_text().strip() == (
        mock_site.password
    )
    assert mock_site.password not in mock_site.site_file.read_text()
    hosts = {n["host"] for n in doc["nodes"]}
    assert hosts == {"uccx1.cc.example.com", "uccx2.cc.example.com", "sm1.cc.example.com"}
    # web_ports map each real port the listener stands for to where it listens here
    assert [list(n["web_ports"]) for n in doc["nodes"]] == (
        [[8443, 8445, 8444, 7443, 12015]] * 2 + [[443, 7443]])
    ports = [n["ssh_port"] for n in doc["nodes"]] + [
        p for n in doc["nodes"] for p in n["web_ports"].values()
    ]
    ports.append(doc["cop_repository"]["port"])
    assert len(set(ports)) == len(ports)
    kh = (mock_site.site_file.parent / doc["known_hosts"]).read_text().splitlines()
    for n in doc["nodes"]:
        assert any(line.startswith(f"[127.0.0.1]:{n['ssh_port']} ssh-ed25519 ") for line in kh)
    assert doc["cop_repository"]["credential"] == "sftp"
    assert set(doc["cop_files"]) == {
        "uccx_disable",
        "uccx_rollback",
        "socialminer_disable",
        "socialminer_rollback",
    }


# ------------------------------------------------------------------------------ CLI basics
def test_first_boot_cli(mock_site):
    r = ssh(
        mock_site,
        "uccx-pub",
        "show version active\nshow cert list own\nshow cert list trust\n"
        "show cert own tomcat-ECDSA/tomcat-ECDSA.pem\nutils service list\nfoo bar",
    )
    out = r.stdout
    assert r.returncode == 0, r.stderr
    assert (
        "Active Master Version: 11.5.1.10000-61\nActive Version Installed Software Options:" in out
    )
    assert "tomcat/tomcat.pem: Self-signed certificate generated by system" in out
    assert "tomcat-ECDSA/tomcat-ECDSA.pem: Self-signed certificate generated by system" in out
    assert re.search(
        r"tomcat-trust/uccx1-EC\.cc\.example\.com_[0-9a-f]+\.pem: Trust Certificate", out
    )
    assert re.search(r"tomcat-trust/uccx1\.cc\.example\.com_[0-9a-f]+\.pem: Trust Certificate", out)
    cert = x509.load_pem_x509_certificate(pem_block(out).encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "uccx1-EC.cc.example.com"
    )
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert "Cisco Tomcat[STARTED]" in out
    assert "Invalid command: foo bar\nExecuted command unsuccessfully\nadmin:" in out
    # the prompt came back after the error and quit ended the session cleanly
    assert out.rstrip().endswith("admin:")


def test_web_ports_present_by_signature_algorithms(mock_site):
    for name, node in mock_site.nodes.items():
        short = node.host.split(".")[0]
        for port in node.web_ports:
            ecp, rsap = presented(port)
            assert (ecp.key_type, ecp.subject_cn) == ("EC", f"{short}-EC.cc.example.com"), name
            assert (rsap.key_type, rsap.subject_cn) == ("RSA", node.host), name


def test_a_browser_is_shown_what_210528_says_and_no_tls_1_3(mock_site):
    """A client offering RSA and ECDSA (openssl s_client's defaults, like Chromium) is shown
    the RSA tomcat by the Tomcats and UCCX's Openfire, the self-signed tomcat-ECDSA by
    Socket.IO (12015) and SocialMiner's Openfire (7443) [doc: Cisco 210528]; TLS 1.3 is
    refused (UCCX 11.x: TLS 1.0-1.2, Cisco 201000)."""
    from cckit import topology

    doc = yaml.safe_load(mock_site.site_file.read_text())
    for n in doc["nodes"]:
        short = n["host"].split(".")[0]
        spec = topology.spec(n["role"])
        for real, port in n["web_ports"].items():
            got = tls_probe(port, None, tls="any")
            unit = spec.to_browser(real, topology.EcdsaState.SELF_SIGNED)
            want = (f"{short}-EC.cc.example.com" if unit == topology.ECDSA_UNIT else n["host"])
            assert (got.subject_cn, "Protocol  : TLSv1.2" in got.output) == (want, True), (
                n["name"], real)
            assert not tls_probe(port, None, tls="1.3").ok


def test_the_mock_mirrors_the_topology():
    """The mock imports nothing from cckit: its port -> service map and its browser rule
    (which services present tomcat-ECDSA to a client offering both) agree with topology."""
    from cckit import topology
    from cckit.vosmock.node import BROWSER_ECDSA, TOMCAT, WEB_SERVICE_OF_PORT
    from cckit.vosmock.site import NODE_SPECS

    for ns in NODE_SPECS:
        spec = topology.spec(ns.role)
        assert ns.web == spec.ports, ns.role
        product = ns.role.split("-")[0]
        for port in ns.web:
            service = spec.service_on(port)
            assert WEB_SERVICE_OF_PORT[product].get(port, TOMCAT) == service.name
            rule = BROWSER_ECDSA.get(service.name)
            assert service.browser_ecdsa == (rule is not None), service.name
            assert service.browser_rsa_signed_ecdsa == (rule == "any"), service.name


def set_cert_type(site, node: str, kind: str) -> str:
    """`set tls server cert_type KIND`, confirmed: the node reboots to apply it [doc: UCCX
    15.0 CLI]. Returns the command's output once the node serves TLS again."""
    port = site.nodes[node].web_ports[0]
    with cli(site, node) as s:
        s.send(f"set tls server cert_type {kind}\n")
        s.expect(r"Do you want to continue \(y/n\) \? ")
        s.send("y\n")
        out = s.expect("The system is going down for reboot")
        assert s.proc.wait(10) is not None  # the node closed the session
    time.sleep(0.3)
    assert not tls_probe(port, SIGALGS_RSA).ok  # refused while rebooting
    deadline = time.monotonic() + 15
    while not tls_probe(port, SIGALGS_RSA).ok:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    return out


def test_tls_cert_type_on_a_12_5_uccx_node_without_tomcat_ecdsa(mock_site, tmp_path):
    """UCCX 12.5 has the command but no tomcat-ECDSA (Cisco 118855): whatever the type
    says, its ports present RSA only."""
    out = ssh(mock_site, "uccx-pub", "show tls server cert_type").stdout
    assert "Invalid command: show tls server cert_type" in out  # 11.5 has no such command
    mock_site.stop()
    with running_site(tmp_path / "v12", version="12.5.1.10000-22", restart_seconds=1.5) as site:
        port = site.nodes["uccx-pub"].web_ports[0]
        with cli(site) as s:
            assert "tomcat-ECDSA" not in s.cmd("show cert list own")
            assert "The server certificate type is set to RSA" in s.cmd(
                "show tls server cert_type")
            s.send("set tls server cert_type ecdsa\n")
            s.expect(r"Do you want to continue \(y/n\) \? ")
            s.send("n\n")
            s.expect("Command canceled.")
            s.expect(r"(?m)^admin:")  # no reboot: the session goes on
            assert "set to RSA" in s.cmd("show tls server cert_type")
        assert not tls_probe(port, SIGALGS_ECDSA).ok  # an ECDSA-only client is refused
        assert tls_probe(port, SIGALGS_RSA).key_type == "RSA"
        out = set_cert_type(site, "uccx-pub", "ecdsa")
        assert "Successfully configured the server to use ECDSA certificate" in out
        assert "A system reboot will occur for the changes to take effect." in out
        assert "set to ECDSA" in ssh(site, "uccx-pub", "show tls server cert_type").stdout
        # rebooted with the type stored, yet no tomcat-ECDSA to present: still RSA only
        assert not tls_probe(port, SIGALGS_ECDSA).ok
        assert tls_probe(port, SIGALGS_RSA).key_type == "RSA"


def test_tls_cert_type_rsa_stops_tomcat_ecdsa_on_cucm(tmp_path):
    """CUCM keeps tomcat-ECDSA in 12.x: `cert_type rsa` and the reboot take it off its port."""
    with running_site(tmp_path, product="cucm", version="12.5.1.11900-146",
                      restart_seconds=1.5) as site:
        port = site.nodes["cucm-pub"].web_ports[0]
        sub_port = site.nodes["cucm-sub"].web_ports[0]
        assert "set to ECDSA" in ssh(site, "cucm-pub", "show tls server cert_type").stdout
        assert tls_probe(port, SIGALGS_ECDSA).key_type == "EC"
        set_cert_type(site, "cucm-pub", "rsa")
        assert "set to RSA" in ssh(site, "cucm-pub", "show tls server cert_type").stdout
        assert not tls_probe(port, SIGALGS_ECDSA).ok
        assert tls_probe(port, SIGALGS_RSA).key_type == "RSA"
        assert tls_probe(sub_port, SIGALGS_ECDSA).key_type == "EC"  # per node: sub unchanged


# ------------------------------------------------------------------------------ CA-signed flow
def test_ca_signed_import_replication_and_restart(mock_site):
    ca = CA()
    pub = mock_site.nodes["uccx-pub"]
    with cli(mock_site, "uccx-pub") as s:
        csr = gen_csr(s)
        assert "tomcat-ECDSA/tomcat-ECDSA.csr" in s.cmd("show csr list own")
        out = import_cert(s, "set cert import trust tomcat", ca.pem)
        assert "Successfully imported certificate for tomcat." in out
        ca_file = trust_name(s, "Lab_EC_Root_CA")
        out = import_cert(s, f"set cert import own tomcat-ECDSA {ca_file}", ca.sign_csr(csr))
        assert "Successfully imported certificate for tomcat-ECDSA." in out
        assert (
            "Please restart services related to tomcat-ECDSA for the new certificate to become "
            "active." in out
        )
        assert "tomcat-ECDSA/tomcat-ECDSA.pem: Certificate Signed by Lab EC Root CA" in s.cmd(
            "show cert list own"
        )
        assert "tomcat-ECDSA.csr" not in s.cmd("show csr list own")  # the CSR was consumed
        # stored, not yet active: the listeners still present the self-signed cert
        for port in pub.web_ports:
            assert tls_probe(port, SIGALGS_ECDSA).issuer_cn == "uccx1-EC.cc.example.com"
        out = s.cmd("utils service restart Cisco Tomcat")
        assert re.search(
            r"Cisco Tomcat\[STOPPING\].*Cisco Tomcat\[STARTING\].*Cisco Tomcat\[STARTED\]",
            out,
            re.DOTALL,
        )
        # only the platform Tomcat's port (8443) reloaded; Finesse (8445), CUIC (8444), the
        # Notification Service (7443) and Socket.IO (12015) present the new certificate
        # after their own restarts
        _, finesse_port, _cuic, notification_port, socketio_port = pub.web_ports
        assert tls_probe(finesse_port, SIGALGS_ECDSA).issuer_cn == "uccx1-EC.cc.example.com"
        s.cmd("utils service restart Cisco Finesse Tomcat")
        assert tls_probe(finesse_port, SIGALGS_ECDSA).issuer_cn == "Lab EC Root CA"
        assert tls_probe(socketio_port, SIGALGS_ECDSA).issuer_cn == "uccx1-EC.cc.example.com"
        assert tls_probe(socketio_port, None).issuer_cn == "uccx1-EC.cc.example.com"
        for service in ("Cisco Unified CCX Socket.IO Service",
                        "Cisco Unified Intelligence Center Reporting Service",
                        "Cisco Unified CCX Notification Service"):
            s.cmd(f"utils service restart {service}")
    for port in pub.web_ports:
        ecp, rsap = presented(port)
        assert (ecp.issuer_cn, ecp.subject_cn) == ("Lab EC Root CA", "uccx1-EC.cc.example.com")
        assert rsap.subject_cn == "uccx1.cc.example.com" and rsap.key_type == "RSA"
    # a browser: the EC-signed tomcat-ECDSA on Live Data (12015), the RSA tomcat elsewhere
    assert tls_probe(socketio_port, None).issuer_cn == "Lab EC Root CA"
    assert tls_probe(notification_port, None).key_type == "RSA"
    # trust imported on the publisher replicated to the subscriber, not to SocialMiner
    assert "Lab_EC_Root_CA_" in ssh(mock_site, "uccx-sub", "show cert list trust").stdout
    assert "Lab_EC_Root_CA_" not in ssh(mock_site, "sm", "show cert list trust").stdout


def test_system_restart_activates_and_refuses_meanwhile(tmp_path):
    ca = CA()
    with running_site(tmp_path, restart_seconds=1.5) as site:
        node = site.nodes["sm"]
        with cli(site, "sm") as s:
            csr = gen_csr(s)
            import_cert(s, "set cert import trust tomcat", ca.pem)
            out = import_cert(
                s,
                f"set cert import own tomcat-ECDSA {trust_name(s, 'Lab_EC_Root_CA')}",
                ca.sign_csr(csr),
            )
            assert "Successfully imported" in out
            s.send("utils system restart\n")
            s.expect(r"Do you really want to restart \?\nEnter \(yes/no\)\? ")
            s.send("yes\n")
            s.expect("Appliance is being Restarted ...")
            assert s.proc.wait(10) is not None  # the node closed the session
        time.sleep(0.3)
        assert not tls_probe(node.web_ports[0], SIGALGS_RSA).ok  # refused while rebooting
        r = ssh(site, "sm", "show version active")
        assert r.returncode == 255
        deadline = time.monotonic() + 15
        while not tls_probe(node.web_ports[0], SIGALGS_ECDSA).ok:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert tls_probe(node.web_ports[0], SIGALGS_ECDSA).issuer_cn == "Lab EC Root CA"
        assert ssh(site, "sm", "show version active").returncode == 0


def test_service_restart_status_polling_and_refusal(tmp_path):
    with running_site(tmp_path, restart_seconds=2) as site:
        port = site.nodes["uccx-pub"].web_ports[0]  # 8443: the platform Tomcat's own port
        with cli(site) as a, cli(site) as b:
            a.send("utils service restart Cisco Tomcat\n")
            a.expect(r"Cisco Tomcat\[STOPPING\]")
            assert re.search(
                r"Cisco Tomcat\[(STOPPED|STARTING|STOPPING)\]", b.cmd("utils service list")
            )
            probe = tls_probe(port, SIGALGS_RSA)
            assert not probe.ok
            a.expect(r"Cisco Tomcat\[STARTED\]", timeout=15)
            a.expect(r"(?m)^admin:")
            assert "Cisco Tomcat[STARTED]" in b.cmd("utils service list")
            assert tls_probe(port, SIGALGS_RSA).ok


def test_an_rsa_signed_tomcat_ecdsa_to_a_browser(mock_site):
    """210528's RSA-signed row: Socket.IO (12015) shows a browser the RSA tomcat instead,
    SocialMiner's Openfire (7443) keeps showing the RSA-signed tomcat-ECDSA (CSCvb58580: chat
    and email break); an ECDSA-only client still gets it on both."""
    rsa_ca = CA("Lab RSA CA", key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    for node, service, port in (("uccx-pub", "Cisco Unified CCX Socket.IO Service", 12015),
                                ("sm", "Cisco SocialMiner Notification Service", 7443)):
        info = mock_site.nodes[node]
        local = dict(zip(_real_ports(mock_site, node), info.web_ports, strict=True))[port]
        with cli(mock_site, node) as s:
            csr = x509.load_pem_x509_csr(gen_csr(s).encode())
            import_cert(s, "set cert import trust tomcat", rsa_ca.pem)
            out = import_cert(s, f"set cert import own tomcat-ECDSA "
                              f"{trust_name(s, 'Lab_RSA_CA')}", rsa_ca.sign(csr.public_key(),
                                                                           info.host))
            assert "Successfully imported certificate for tomcat-ECDSA." in out
            s.cmd(f"utils service restart {service}")
        ecp = tls_probe(local, SIGALGS_ECDSA)
        assert (ecp.key_type, ecp.issuer_cn) == ("EC", "Lab RSA CA")
        browser = tls_probe(local, None)
        if node == "sm":
            assert (browser.key_type, browser.issuer_cn) == ("EC", "Lab RSA CA")
        else:
            assert (browser.key_type, browser.subject_cn) == ("RSA", info.host)


def _real_ports(site, node: str) -> list[int]:
    doc = yaml.safe_load(site.site_file.read_text())
    return next(list(n["web_ports"]) for n in doc["nodes"] if n["name"] == node)


# ------------------------------------------------------------------------------ VOS rules
def test_own_import_refusals_leave_state_unchanged(mock_site):
    ca = CA()
    stranger = CA("Stranger CA")
    rsa_ca = CA("Lab RSA CA", key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with cli(mock_site) as s:
        csr_pem = gen_csr(s)
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        import_cert(s, "set cert import trust tomcat", ca.pem)
        import_cert(s, "set cert import trust tomcat", rsa_ca.pem)
        ca_file = trust_name(s, "Lab_EC_Root_CA")
        before = s.cmd("show cert own tomcat-ECDSA/tomcat-ECDSA.pem")

        def refused(pem: str, expect: str, unit: str = "tomcat-ECDSA") -> None:
            out = import_cert(s, f"set cert import own {unit} {ca_file}", pem)
            assert expect in out and "Executed command unsuccessfully" in out, out
            assert "Successfully imported" not in out

        other_key = ec.generate_private_key(ec.SECP384R1())
        refused(ca.sign(other_key.public_key(), "x"), "does not match the CSR pending")
        refused(stranger.sign(csr.public_key(), "x"), "is not in tomcat-trust")
        # the issuer name is trusted but the signature is not the CA's: still refused
        forged = ca.sign(csr.public_key(), "x", signer_key=ec.generate_private_key(ec.SECP384R1()))
        refused(forged, "is not in tomcat-trust")
        rsa_leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        refused(rsa_ca.sign(rsa_leaf_key.public_key(), "x"), "requires an EC key")
        refused(ca.sign(csr.public_key(), "x"), "requires an RSA key", unit="tomcat")
        refused(
            "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
            "not a valid PEM certificate",
        )
        out = s.cmd("set cert import own tomcat-ECDSA tomcat-trust/nope.pem")
        assert "not found" in out and "Executed command unsuccessfully" in out
        assert s.cmd("show cert own tomcat-ECDSA/tomcat-ECDSA.pem") == before
        assert "tomcat-ECDSA/tomcat-ECDSA.csr" in s.cmd("show csr list own")
        # an ECDSA leaf signed by the RSA CA is accepted (it fits the unit and chains)
        out = import_cert(
            s,
            f"set cert import own tomcat-ECDSA {ca_file}",
            rsa_ca.sign(csr.public_key(), "uccx1-EC.cc.example.com"),
        )
        assert "Successfully imported certificate for tomcat-ECDSA." in out


def test_new_csr_replaces_pending_one_and_its_key(mock_site):
    ca = CA()
    with cli(mock_site) as s:
        first = gen_csr(s)
        second = gen_csr(s)
        assert first != second
        import_cert(s, "set cert import trust tomcat", ca.pem)
        ca_file = trust_name(s, "Lab_EC_Root_CA")
        out = import_cert(s, f"set cert import own tomcat-ECDSA {ca_file}", ca.sign_csr(first))
        assert "does not match the CSR pending" in out
        out = import_cert(s, f"set cert import own tomcat-ECDSA {ca_file}", ca.sign_csr(second))
        assert "Successfully imported certificate for tomcat-ECDSA." in out


def test_rsa_tomcat_csr_and_import(mock_site):
    rsa_ca = CA("Lab RSA CA", key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with cli(mock_site, "uccx-sub") as s:
        csr = gen_csr(s, "tomcat")
        assert isinstance(x509.load_pem_x509_csr(csr.encode()).public_key(), rsa.RSAPublicKey)
        import_cert(s, "set cert import trust tomcat", rsa_ca.pem)
        out = import_cert(
            s, f"set cert import own tomcat {trust_name(s, 'Lab_RSA_CA')}", rsa_ca.sign_csr(csr)
        )
        assert "Successfully imported certificate for tomcat." in out
        s.cmd("utils service restart Cisco Tomcat")
    port = mock_site.nodes["uccx-sub"].web_ports[0]
    assert tls_probe(port, SIGALGS_RSA).issuer_cn == "Lab RSA CA"
    assert tls_probe(port, SIGALGS_ECDSA).issuer_cn == "uccx2-EC.cc.example.com"


def test_include_ou_prompt_is_a_node_option(tmp_path):
    with running_site(tmp_path, include_ou_prompt=["sm"]) as site:
        with cli(site, "sm") as s:
            s.send("set csr gen tomcat-ECDSA\n")
            s.expect(r"Include OU in CSR \(yes\|no\)\? ")
            s.send("yes\n")
            assert "Successfully Generated CSR for tomcat-ECDSA." in s.expect(r"(?m)^admin:")
            csr = x509.load_pem_x509_csr(
                pem_block(
                    s.cmd("show csr own tomcat-ECDSA/tomcat-ECDSA.csr"), "CERTIFICATE REQUEST"
                ).encode()
            )
            assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
            s.send("set csr gen tomcat-ECDSA\n")
            s.expect(r"Include OU in CSR \(yes\|no\)\? ")
            s.send("no\n")
            s.expect(r"(?m)^admin:")
            csr = x509.load_pem_x509_csr(
                pem_block(
                    s.cmd("show csr own tomcat-ECDSA/tomcat-ECDSA.csr"), "CERTIFICATE REQUEST"
                ).encode()
            )
            assert not csr.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        # other nodes do not ask
        assert "Include OU" not in ssh(site, "uccx-pub", "set csr gen tomcat-ECDSA").stdout


def test_regen_and_delete_trust(mock_site):
    with cli(mock_site) as s:
        old = pem_block(s.cmd("show cert own tomcat-ECDSA/tomcat-ECDSA.pem"))
        old_trust = trust_name(s, "uccx1-EC.cc.example.com")
        s.send("set cert regen tomcat-ECDSA\n")
        s.expect(r"Proceed with regeneration \(yes\|no\)\? ")
        s.send("yes\n")
        out = s.expect(r"(?m)^admin:")
        assert "Successfully Regenerated Certificate for tomcat-ECDSA." in out
        new = pem_block(s.cmd("show cert own tomcat-ECDSA/tomcat-ECDSA.pem"))
        assert new != old
        new_trust = trust_name(s, "uccx1-EC.cc.example.com")
        assert new_trust != old_trust
        assert old_trust not in s.cmd("show cert list trust")
        # regenerated, not yet active
        assert (
            tls_probe(mock_site.nodes["uccx-pub"].web_ports[0], SIGALGS_ECDSA).pem == old.encode()
        )
        ca = CA()
        import_cert(s, "set cert import trust tomcat", ca.pem)
        ca_file = trust_name(s, "Lab_EC_Root_CA")
        assert ca_file in ssh(mock_site, "uccx-sub", "show cert list trust").stdout
        out = s.cmd(f"set cert delete trust {ca_file}")
        assert "Successfully deleted" in out
        assert ca_file not in s.cmd("show cert list trust")
        assert "not found" in s.cmd(f"set cert delete trust {ca_file}")
    # deletion replicated too
    assert ca_file not in ssh(mock_site, "uccx-sub", "show cert list trust").stdout


# ------------------------------------------------------------------------------ COP wizard
def test_cop_install_once_effect_after_restart_and_rollback(mock_site):
    disable = mock_site.cop_files["uccx_disable"]
    rollback = mock_site.cop_files["uccx_rollback"]
    port = mock_site.nodes["uccx-pub"].web_ports[0]
    with cli(mock_site) as s:
        out = upgrade(s, mock_site, disable)
        assert f"Successfully installed {disable}" in out
        assert "restart" in out.lower()
        va = s.cmd("show version active")
        # [doc] installed COPs are listed without the .sgn of the signed file
        assert f"Active Version Installed Software Options:\n{disable[:-4]}\n" in va
        assert tls_probe(port, SIGALGS_ECDSA).ok  # not before the restart
        s.cmd("utils service restart Cisco Tomcat")
        ecp, rsap = presented(port)
        assert not ecp.ok, ecp.output
        assert rsap.key_type == "RSA"
        # the ECDSA cert stays in the keystore
        assert "tomcat-ECDSA/tomcat-ECDSA.pem" in s.cmd("show cert list own")
        out = upgrade(s, mock_site, disable)
        assert f"{disable} is already installed" in out and "Executed command unsuccessfully" in out
        out = upgrade(s, mock_site, rollback)
        assert f"Successfully installed {rollback}" in out
        va = s.cmd("show version active")
        assert rollback[:-4] in va and disable[:-4] not in va
        assert not tls_probe(port, SIGALGS_ECDSA).ok
        s.cmd("utils service restart Cisco Tomcat")
        assert tls_probe(port, SIGALGS_ECDSA).key_type == "EC"
    # other nodes are untouched
    assert tls_probe(mock_site.nodes["uccx-sub"].web_ports[0], SIGALGS_ECDSA).ok


def test_cop_wrong_product_and_bad_sftp_login(mock_site):
    with cli(mock_site, "sm") as s:
        out = upgrade(s, mock_site, mock_site.cop_files["uccx_disable"])
        assert "does not apply to this product" in out
        out = upgrade(s, mock_site, None, password="wrong")
        assert "could not log in to the SFTP server" in out
        assert "No Installed Software Options Found." in s.cmd("show version active")


# ------------------------------------------------------------------------------ faults
def test_fault_drop_import_after_paste(mock_site):
    ca = CA()
    mock_site.faults.set("drop_import", True, node="uccx-pub")
    s = cli(mock_site)
    s.send("set cert import trust tomcat\n")
    s.expect("Paste the Certificate and Hit Enter")
    s.send(ca.pem)
    assert s.proc.wait(10) == 255  # the session was dropped
    s.close()
    assert "Lab_EC_Root_CA" not in ssh(mock_site, "uccx-pub", "show cert list trust").stdout
    assert "Lab_EC_Root_CA" not in ssh(mock_site, "uccx-sub", "show cert list trust").stdout
    # one-shot: the next import works
    with cli(mock_site) as s:
        assert "Successfully imported" in import_cert(s, "set cert import trust tomcat", ca.pem)


def test_fault_restart_without_started_banner(mock_site):
    mock_site.faults.set("restart_no_started", True, node="uccx-sub")
    with cli(mock_site, "uccx-sub") as s:
        out = s.cmd("utils service restart Cisco Tomcat")
        assert "Cisco Tomcat[STARTING]" in out and "[STARTED]" not in out
        assert "Cisco Tomcat[STARTED]" in s.cmd("utils service list")
    assert tls_probe(mock_site.nodes["uccx-sub"].web_ports[0], SIGALGS_ECDSA).ok


def test_fault_cop_missing(mock_site):
    disable = mock_site.cop_files["uccx_disable"]
    mock_site.faults.set("cop_missing", [disable])
    with cli(mock_site) as s:
        out = upgrade(s, mock_site, mock_site.cop_files["uccx_rollback"])
        assert disable not in out.split("Successfully")[0]
        mock_site.faults.set("cop_missing", "*")
        out = upgrade(s, mock_site, None)
        assert "There were no valid upgrades found" in out
        mock_site.faults.clear()
        assert f"Successfully installed {disable}" in upgrade(s, mock_site, disable)


def test_fault_slow_output(mock_site):
    mock_site.faults.set("slow_output", 0.1, node="uccx-pub")
    with cli(mock_site) as s:
        t = time.monotonic()
        out = s.cmd("show version active")
        assert time.monotonic() - t >= 0.1 * (len(out.strip().splitlines()) - 1)  # not the echo


def test_fault_node_down_and_control_endpoint(mock_site):
    import requests

    http = requests.Session()
    http.trust_env = False  # loopback: no proxies from the environment
    node = mock_site.nodes["sm"]
    url = f"{mock_site.control_url}/faults"
    r = http.post(url, json={"fault": "down", "value": True, "node": "sm"}, timeout=10)
    assert r.json()["nodes"]["sm"]["down"] is True
    assert ssh(mock_site, "sm", "show version active").returncode == 255
    assert not tls_probe(node.web_ports[0], SIGALGS_RSA).ok
    assert ssh(mock_site, "uccx-pub", "show version active").returncode == 0
    status = http.get(f"{mock_site.control_url}/status", timeout=10).json()
    assert status["nodes"]["sm"]["ssh_port"] == node.ssh_port
    assert http.delete(url, timeout=10).status_code == 200
    assert ssh(mock_site, "sm", "show version active").returncode == 0
    assert tls_probe(node.web_ports[0], SIGALGS_RSA).ok
    assert http.post(url, json={"fault": "nope"}, timeout=10).status_code == 400


# ------------------------------------------------------------------------------ security
def test_wrong_password_and_lockout(tmp_path):
    with running_site(tmp_path, lockout_failures=3, lockout_seconds=1.5) as site:
        port = site.nodes["uccx-pub"].ssh_port
        r = run_ssh(port, site.known_hosts, "wrong", "show version active\nquit\n")
        assert r.returncode == 255 and "Active Master Version" not in r.stdout
        for _ in range(2):
            run_ssh(port, site.known_hosts, "wrong", "quit\n")
        # locked: even the right password fails, on this node only
        r = run_ssh(port, site.known_hosts, site.password, "show version active\nquit\n")
        assert r.returncode == 255
        assert ssh(site, "uccx-sub", "show version active").returncode == 0
        time.sleep(1.6)
        assert ssh(site, "uccx-pub", "show version active").returncode == 0


def test_text_after_the_end_line_is_the_next_command_line(mock_site):
    """[doc] The node reads a paste up to the END line; what follows is the next command
    line: an extra blank line yields an extra prompt, shifting later outputs by one."""
    ca = CA()
    with cli(mock_site) as s:
        out = import_cert(s, "set cert import trust tomcat", ca.pem + "\nshow version active\n")
        assert "Successfully imported certificate for tomcat." in out
        rest = s.expect(r"No Installed Software Options Found\.\nadmin:")
        # the blank line's own prompt comes right after the import's, then the next line ran
        assert rest.startswith("admin:") and rest.count("admin:") == 2
        assert "Active Master Version" in rest
        assert "Lab_EC_Root_CA" in s.cmd("show cert list trust")
    # [assumed] text after the marker on the END line itself is dropped
    ca2 = CA("Second CA")
    with cli(mock_site) as s:
        out = import_cert(
            s, "set cert import trust tomcat", ca2.pem.rstrip("\n") + "; set cert delete trust x\n"
        )
        assert "Successfully imported" in out
        assert "Executed command unsuccessfully" not in out


def test_a_paste_too_long_runs_none_of_its_lines(mock_site):
    """A paste past the line limit is read (and dropped) up to its END line: a pasted
    `set cert regen` inside it never runs (it did before: the limit ended the paste)."""
    filler = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\n"
    paste = ("-----BEGIN CERTIFICATE-----\n" + filler * 405 + "set cert regen tomcat-ECDSA\n"
             "yes\n" + filler * 3 + "-----END CERTIFICATE-----\n")
    with cli(mock_site) as s:
        before = s.cmd("show cert own tomcat-ECDSA/tomcat-ECDSA.pem")
        out = import_cert(s, "set cert import trust tomcat", paste)
        assert "too long" in out and "Executed command unsuccessfully" in out
        assert "Regenerat" not in out
        assert s.cmd("show cert own tomcat-ECDSA/tomcat-ECDSA.pem") == before
        assert "Active Master Version" in s.cmd("show version active")


def test_control_characters(mock_site):
    with cli(mock_site) as s:
        out = s.cmd("show verXX\x7f\x7fsion \x1b[A\x01act\x07ive")
        assert "Active Master Version" in out
        s.send("utils system restart\x03")
        s.expect(r"(?m)^admin:")
        assert "Cisco Tomcat[STARTED]" in s.cmd("utils service list")


def test_path_traversal_cn(mock_site):
    evil = CA("../../x")
    evil2 = CA("/etc/passwd")
    with cli(mock_site) as s:
        for ca in (evil, evil2):
            assert "Successfully imported" in import_cert(s, "set cert import trust tomcat", ca.pem)
        listing = s.cmd("show cert list trust")
        assert re.search(r"tomcat-trust/_\.\._x_[0-9a-f]+\.pem", listing), listing
        assert re.search(r"tomcat-trust/_etc_passwd_[0-9a-f]+\.pem", listing), listing
        assert "not found" in s.cmd("show cert trust ../../../../etc/passwd")
        assert "not found" in s.cmd("set cert delete trust ../site.json")
    state = mock_site.state_dir
    assert not (state.parent / "x").exists() and not (state / "x").exists()
    for p in state.parent.parent.rglob("*"):
        assert p.is_relative_to(state.parent) or p == state.parent


# ------------------------------------------------------------------------------ concurrency
def test_two_nodes_driven_at_once(mock_site):
    results = {}

    def drive(node: str) -> None:
        with cli(mock_site, node) as s:
            csr = gen_csr(s)
            out = s.cmd("utils service restart Cisco Tomcat")
            results[node] = (csr, out, s.cmd("show csr list own"))

    threads = [threading.Thread(target=drive, args=(n,)) for n in ("uccx-pub", "sm")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(results) == {"uccx-pub", "sm"}
    assert results["uccx-pub"][0] != results["sm"][0]
    for _csr, out, listing in results.values():
        assert "Cisco Tomcat[STARTED]" in out and "tomcat-ECDSA/tomcat-ECDSA.csr" in listing
    cns = {
        n: x509.load_pem_x509_csr(r[0].encode())
        .subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0]
        .value
        for n, r in results.items()
    }
    assert cns == {"uccx-pub": "uccx1-EC.cc.example.com", "sm": "sm1-EC.cc.example.com"}


# ------------------------------------------------------------------------------ persistence
def test_everything_persists_across_stop_and_start(tmp_path):
    ca = CA()
    with running_site(tmp_path) as site:
        with cli(site) as s:
            csr = gen_csr(s)
            import_cert(s, "set cert import trust tomcat", ca.pem)
            upgrade(s, site, site.cop_files["uccx_disable"])
            own = s.cmd("show cert own tomcat-ECDSA/tomcat-ECDSA.pem")
            trust = s.cmd("show cert list trust")
        before = (
            site.password,
            site.sftp_password,
            dict(site.nodes),
            site.sftp_port,
            site.known_hosts.read_text(),
        )
    with running_site(tmp_path) as site:
        assert (
            site.password,
            site.sftp_password,
            dict(site.nodes),
            site.sftp_port,
            site.known_hosts.read_text(),
        ) == before
        with cli(site) as s:  # StrictHostKeyChecking=yes with the old known_hosts
            assert s.cmd("show cert own tomcat-ECDSA/tomcat-ECDSA.pem") == own
            assert s.cmd("show cert list trust") == trust
            assert (
                pem_block(
                    s.cmd("show csr own tomcat-ECDSA/tomcat-ECDSA.csr"), "CERTIFICATE REQUEST"
                )
                == csr
            )
            assert site.cop_files["uccx_disable"][:-4] in s.cmd("show version active")
            out = import_cert(
                s,
                f"set cert import own tomcat-ECDSA {trust_name(s, 'Lab_EC_Root_CA')}",
                ca.sign_csr(csr),
            )
            assert "Successfully imported" in out
    for p in (tmp_path / "state").rglob("*"):
        assert not p.name.startswith(".tmp-")
        if p.suffix == ".key" or p.name.endswith("_key") or p.suffix == ".password":
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


# ------------------------------------------------------------------------------ REST (VOS 14+)
def test_certmgr_rest_on_version_14(tmp_path):
    import requests

    from cckit.vos.rest import _TLSAdapter

    ca = CA()
    # certmgr REST exists on CUCM 14+, not on UCCX/SocialMiner (DESIGN.md)
    with running_site(tmp_path, version="14.0.1.10000-1", product="cucm") as site:
        node = site.nodes["cucm-pub"]
        assert node.rest_port
        doc = yaml.safe_load(site.site_file.read_text())
        assert doc["nodes"][0]["rest"] == {"port": node.rest_port}
        base = f"https://127.0.0.1:{node.rest_port}/platformcom/api/v1/certmgr/config"
        # verified: the node's self-signed certificates as the CAs, its FQDN as the name
        # (reached by IP address)
        active = site.state_dir / "nodes" / "cucm-pub" / "active"
        cafile = tmp_path / "node-cas.pem"
        cafile.write_bytes(b"".join((active / u / f"{u}.pem").read_bytes()
                                    for u in ("tomcat", "tomcat-ECDSA")))
        http = requests.Session()
        http.trust_env = False
        http.verify = str(cafile)
        http.mount("https://", _TLSAdapter(fingerprint=None, server_hostname=node.host))
        auth = (site.username, site.password)
        r = http.get(f"{base}/trust/certificate?service=tomcat", auth=("admin", "bad"), timeout=10)
        assert r.status_code == 401
        r = http.post(
            f"{base}/csr",
            auth=auth,
            timeout=10,
            json={
                "service": "tomcat-ECDSA",
                "distribution": "this-server",
                "commonName": "cucm1-EC.cc.example.com",
                "keyType": "ec",
                "keyLength": 384,
                "hashAlgorithm": "sha384",
                "altNames": [],
            },
        )
        assert r.status_code == 200, r.text
        csr = r.json()["csr"]
        r = http.post(
            f"{base}/trust/certificates",
            auth=auth,
            timeout=10,
            json={"service": ["tomcat"], "certificates": [ca.pem], "description": "lab"},
        )
        assert r.status_code == 200, r.text
        r = http.post(
            f"{base}/identity/certificates",
            auth=auth,
            timeout=10,
            json={"service": "tomcat-ECDSA", "certificates": [CA("Stranger").sign_csr(csr)]},
        )
        assert r.status_code == 400 and "tomcat-trust" in r.json()["error"]
        r = http.post(
            f"{base}/identity/certificates",
            auth=auth,
            timeout=10,
            json={"service": "tomcat-ECDSA", "certificates": [ca.sign_csr(csr)]},
        )
        assert r.status_code == 200, r.text
        r = http.get(f"{base}/trust/certificate?service=tomcat", auth=auth, timeout=10)
        assert any(c["subjectName"] == "CN=Lab EC Root CA" for c in r.json())
        assert "Lab_EC_Root_CA" in ssh(site, "cucm-sub", "show cert list trust").stdout


# ------------------------------------------------------------------------------ entry point
def test_serve_command_writes_site_file_and_stops_on_sigterm(tmp_path):
    site_file = tmp_path / "out" / "site.yaml"
    site_file.parent.mkdir()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cckit.vosmock",
            "serve",
            "--state-dir",
            str(tmp_path / "st"),
            "--site-file",
            str(site_file),
            "--restart-seconds",
            "0",
            "--cli-startup-seconds",
            "0.05",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        line = proc.stdout.readline().decode()
        assert "vosmock: site" in line and str(site_file) in line, proc.stderr.read1().decode()
        doc = yaml.safe_load(site_file.read_text())
        pub = doc["nodes"][0]
        password = Path(doc["credentials"]["os-admin"]["password"]["file"]).read_text().strip()
        r = run_ssh(
            pub["ssh_port"],
            site_file.parent / doc["known_hosts"],
            password,
            "show version active\nquit\n",
        )
        assert "Active Master Version: 11.5.1.10000-61" in r.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


@pytest.mark.parametrize("version", ["11.5.1.10000-61", "14.0.1.10000-1"])
def test_site_file_loads_with_the_inventory(tmp_path, version):
    sitemod = pytest.importorskip("cckit.sites")
    with running_site(tmp_path, version=version) as site:
        loaded = sitemod.load_site(site.site_file)
        assert [n.name for n in loaded.nodes] == list(site.nodes)
        # no release of UCCX or SocialMiner has certmgr REST (DESIGN.md): no REST port
        assert all(n.rest is None for n in loaded.nodes)
        assert all(n.rest_port is None for n in site.nodes.values())
        assert loaded.cop_repository.port == site.sftp_port


# ------------------------------------------------------------------------- real-node behaviours
# Each behaviour the public transcripts show (README, "Real-node behaviours"), on by default.

PAGER = "\x1b[1mPress <enter> for 1 line, <space> for one page, or <q> to quit\x1b[0m"


class RawShell:
    """A paramiko shell reading raw bytes (escape sequences and CRs kept)."""

    def __init__(self, site, node: str = "uccx-pub", height: int = 24):
        import paramiko

        self.client = paramiko.SSHClient()
        self.client.load_host_keys(str(site.known_hosts))
        self.client.connect("127.0.0.1", port=site.nodes[node].ssh_port, username="admin",
                            password=site.password, look_for_keys=False, allow_agent=False)
        self.chan = self.client.invoke_shell(term="vt100", width=200, height=height)
        self.chan.settimeout(10)
        self.buf = ""
        self.read_until("admin:")

    def read_until(self, marker: str) -> str:
        while marker not in self.buf:
            self.buf += self.chan.recv(65536).decode()
        text, _, self.buf = self.buf.partition(marker)
        return text + marker

    def send(self, text: str) -> None:
        self.chan.sendall(text.encode())

    def close(self) -> None:
        self.client.close()


def test_paging_is_on_after_login_with_the_real_pager_bytes(mock_site):
    sh = RawShell(mock_site, height=12)  # the pty request's height sets the page
    try:
        sh.send("utils service list\n")
        first = sh.read_until(PAGER)
        assert first.count("\r\n") == 12  # the echo's line end, then 11 lines of output
        sh.send(" ")  # one more page; the pager line is erased first
        second = sh.read_until(PAGER)
        assert second.startswith("\r\x1b[K") and second.count("\r\n") == 11
        sh.send("\r")  # one more line
        third = sh.read_until(PAGER)
        assert third.startswith("\r\x1b[K") and third.count("\r\n") == 1
        sh.send("q")  # the rest is not shown; the prompt follows the erase-line, no newline
        assert sh.read_until("admin:") == "\r\x1b[Kadmin:"
        sh.send("set cli pagination off\n")
        assert sh.read_until("admin:") == (
            "set cli pagination off\r\nAutomatic pagination is turned off\r\nadmin:")
        sh.send("utils service list\n")
        listing = sh.read_until("Command successful\r\nadmin:")
        assert PAGER not in listing and listing.count("[STARTED]") > 40
        assert "Primary Node =true" in listing
    finally:
        sh.close()
    with cli(mock_site, paging=True) as s:  # OpenSSH without a terminal size: 24 rows
        s.send("utils service list\n")
        assert s.expect(re.escape(PAGER)).count("\n") == 24


def test_cli_starts_up_slowly(tmp_path):
    with running_site(tmp_path, cli_startup_seconds=0.6) as site:
        t = time.monotonic()
        sh = RawShell(site, "sm")
        waited = time.monotonic() - t
        sh.close()
    assert waited >= 0.6


def test_keyboard_interactive_only_node(tmp_path):
    with running_site(tmp_path, keyboard_interactive=["uccx-sub"]) as site:
        port = site.nodes["uccx-sub"].ssh_port
        r = run_ssh(port, site.known_hosts, site.password, "show version active\nquit\n")
        assert "Active Master Version" in r.stdout  # keyboard-interactive, answered by askpass
        cmd = [("PreferredAuthentications=password" if a.startswith("PreferredAuth") else a)
               for a in ssh_command(port, site.known_hosts)]
        r = subprocess.run(cmd, input=b"quit\n", capture_output=True, timeout=30,
                           env=ssh_env(site.password), check=False)
        assert r.returncode == 255 and b"Permission denied" in r.stderr
        assert ssh(site, "uccx-pub", "show version active").returncode == 0  # others: password


def test_errors_end_with_a_period_on_12_5(tmp_path):
    with running_site(tmp_path, version="12.5.1.10000-22") as site:
        out = ssh(site, "uccx-pub", "show cert own nothing").stdout
        assert "not found.\nExecuted command unsuccessfully.\n" in out


def walk_wizard(s: SshCli, site, replies: list[tuple[str, str]]) -> str:
    """Start the COP wizard and answer each expected prompt (regex) in order; returns all."""
    s.send("utils system upgrade initiate\n")
    seen = ""
    for prompt, reply in replies:
        seen += s.expect(prompt)
        s.send(reply + "\n")
    return seen + s.expect(r"(?m)^admin:", timeout=30)


def sftp_replies(site, directory="/cop"):
    return [
        (r"Directory: ", directory),
        (r"Server: ", "127.0.0.1"),
        (r"User Name: ", site.sftp_username),
        (r"Password: ", site.sftp_password),
        (r"Please enter SMTP Host Server \(optional\): ", ""),
    ]


def menu_number(site, filename: str) -> str:
    """The wizard lists the repository's files sorted by name."""
    return str(sorted(site.cop_files.values()).index(filename) + 1)


def test_wizard_12_5_subscriber(tmp_path):
    with running_site(tmp_path, version="12.5.1.10000-22") as site:
        disable = site.cop_files["uccx_disable"]
        with cli(site, "uccx-sub") as s:
            out = walk_wizard(s, site, [
                (r"Use download credentials from Publisher \(yes/no\) \[yes\]: ", "no"),
                (r'Please select an option \(1 - 4 or "q" \): ', "1"),
                *sftp_replies(site),
                (r"Continue with upgrade after download \(yes/no\) \[yes\]: ", "no"),
                (r"Switch-version server after upgrade \(yes/no\) \[no\]: ", "no"),
                (r'Please select an option \(1 - \d+ or "q" \): ', menu_number(site, disable)),
                (r"Start installation \(yes/no\): ", "yes"),
            ])
            assert "4) Local Image <None>" in out and "Upgrade Readiness COP" in out
            assert f"Successfully installed {disable}" in out
            # from 12.5 the wizard offers the values typed last time
            s.send("utils system upgrade initiate\n")
            s.expect(r"\[yes\]: ")
            s.send("no\n")
            s.expect(r'\(1 - 4 or "q" \): ')
            s.send("1\n")
            s.expect(r"Directory \[/cop\]: ")
            s.send("\x03")  # Ctrl-C leaves the wizard
            s.expect(r"(?m)^admin:")


def test_wizard_open_session_and_a_dropped_wizard(tmp_path):
    with running_site(tmp_path, wizard={"uccx-pub": "open-session"}) as site:
        with cli(site) as s:
            out = walk_wizard(s, site, [(r"Assume control \(yes/no\): ", "no")])
            assert "already in progress" in out and "Upgrade canceled." in out
            assert "Upgrade canceled." in s.cmd("utils system upgrade cancel")
            out = walk_wizard(s, site, [(r'Please select an option \(1 - 3 or "q" \): ', "q")])
            assert "Assume control" not in out
        # a session that drops inside the wizard leaves the upgrade open [doc: the warning]
        with cli(site, "sm") as s:
            s.send("utils system upgrade initiate\n")
            s.expect(r'\(1 - 3 or "q" \): ')
        with cli(site, "sm") as s:
            out = walk_wizard(s, site, [(r"Assume control \(yes/no\): ", "yes"),
                                        (r'\(1 - 3 or "q" \): ', "q")])
            assert "Upgrade canceled." in out


def test_wizard_remembered_defaults_are_someone_elses(tmp_path):
    with running_site(tmp_path, wizard="remembered-defaults") as site:
        with cli(site) as s:
            out = walk_wizard(s, site, [
                (r'\(1 - 3 or "q" \): ', "1"),
                (r"Directory \[/patches/old\]: ", ""),  # Enter keeps the remembered value
                (r"Server \[sftp-old\.example\.net\]: ", "127.0.0.1"),
                (r"User Name \[patchuser\]: ", site.sftp_username),
                (r"Password: ", site.sftp_password),
                (r"Please enter SMTP Host Server \(optional\): ", ""),
            ])
            assert "directory /patches/old not found" in out


def test_wizard_unknown_question_and_slow_download(tmp_path):
    with running_site(tmp_path, wizard={"uccx-pub": "unknown-question", "sm": "slow-download"},
                      download_seconds=1.0) as site:
        with cli(site) as s:
            out = walk_wizard(s, site, [
                (r'\(1 - 3 or "q" \): ', "1"), *sftp_replies(site),
                (r"Enable the upgrade readiness check \(yes/no\) \[no\]: ", ""),
                (r'\(1 - \d+ or "q" \): ', "q"),
            ])
            assert "Upgrade canceled." in out
        with cli(site, "sm") as s:
            t = time.monotonic()
            out = walk_wizard(s, site, [
                (r'\(1 - 3 or "q" \): ', "1"), *sftp_replies(site),
                (r'\(1 - \d+ or "q" \): ', "2"),
                (r"Start installation \(yes/no\): ", "no"),
            ])
            assert time.monotonic() - t >= 1.0 and "The upgrade was canceled." in out


# ------------------------------------------------------------------------- hardening (issue 15)
def test_sftp_repository_caps_uploads(tmp_path):
    import asyncssh

    with running_site(tmp_path, sftp_max_bytes=1024 * 1024) as site:

        async def put(name: str, size: int) -> str:
            async with asyncssh.connect(
                "127.0.0.1", site.sftp_port, username=site.sftp_username,
                password=site.sftp_password, known_hosts=None, client_keys=None,
                agent_path=None, preferred_auth="password",
            ) as conn, conn.start_sftp_client() as sftp:
                try:
                    async with sftp.open(f"/cop/{name}", "wb") as fh:
                        for _ in range(size // 65536):
                            await fh.write(b"x" * 65536)
                except asyncssh.SFTPError as exc:
                    return exc.reason
                return "ok"

        import asyncio

        assert asyncio.run(put("small.bin", 512 * 1024)) == "ok"
        assert "too large" in asyncio.run(put("big.bin", 2 * 1024 * 1024))
        big = site.state_dir / "sftp" / "root" / "cop" / "big.bin"
        assert big.stat().st_size <= 1024 * 1024


def test_a_taken_port_at_start_moves_to_a_free_one(tmp_path):
    """Two mocks starting at the same moment can pick the same free port: the second moves
    to another port instead of failing with 'address already in use'."""
    import socket

    with running_site(tmp_path / "a") as site:
        taken = site.nodes["uccx-pub"].ssh_port
        web = site.nodes["sm"].web_ports[0]
    holders = []
    for port in (taken, web):
        sock = socket.socket()
        sock.bind(("127.0.0.1", port))
        sock.listen()
        holders.append(sock)
    try:
        with running_site(tmp_path / "a") as site:  # its saved ports are taken now
            assert site.nodes["uccx-pub"].ssh_port != taken
            assert site.nodes["sm"].web_ports[0] != web
            saved = yaml.safe_load((site.state_dir / "site.json").read_text())["ports"]
            assert saved["nodes"]["uccx-pub"]["ssh"] == site.nodes["uccx-pub"].ssh_port
            assert ssh(site, "uccx-pub", "show version active").returncode == 0
            assert tls_probe(site.nodes["sm"].web_ports[0], SIGALGS_RSA).ok
    finally:
        for sock in holders:
            sock.close()


def test_serve_options_for_real_node_behaviour(tmp_path, capsys):
    from cckit.vosmock.cli import _site_options, build_parser, main

    args = build_parser().parse_args([
        "serve", "--state-dir", str(tmp_path), "--site-file", str(tmp_path / "s.yaml"),
        "--wizard", "open-session", "--wizard", "uccx-sub=12.5-subscriber",
        "--keyboard-interactive", "all", "--sftp-max-mb", "2", "--cli-startup-seconds", "30",
    ])
    opts = _site_options(args, None)
    assert opts["wizard"] == {"uccx-pub": "open-session", "uccx-sub": "12.5-subscriber",
                              "sm": "open-session"}
    assert opts["keyboard_interactive"] is True and opts["sftp_max_bytes"] == 2 * 1024 * 1024
    assert opts["cli_startup_seconds"] == 30
    assert main(["serve", "--state-dir", str(tmp_path), "--site-file", str(tmp_path / "s.yaml"),
                 "--wizard", "sm=13.0"]) == 2
    assert "bad --wizard" in capsys.readouterr().err


@pytest.mark.parametrize("version", ["11.6.2.10000-1", "12.5.1.10000-22", "15.0.1.10000-1"])
def test_uccx_11_6_and_later_have_no_tomcat_ecdsa(tmp_path, version):
    """Cisco 118855: no tomcat-ECDSA on UCCX/SocialMiner from 11.6 on (topology agrees)."""
    from cckit import topology

    with running_site(tmp_path, version=version) as site:
        for name, info in site.nodes.items():
            assert not topology.ecdsa_in_use(info.role, version)
            out = ssh(site, name, "show cert list own").stdout
            assert "tomcat/tomcat.pem" in out and "tomcat-ECDSA" not in out, name
            out = ssh(site, name, "set csr gen tomcat-ECDSA").stdout
            assert "invalid unit tomcat-ECDSA: use tomcat." in out
            assert "Executed command unsuccessfully" in out
            assert tls_probe(info.web_ports[0], SIGALGS_RSA).key_type == "RSA"
            assert not tls_probe(info.web_ports[0], SIGALGS_ECDSA).ok
