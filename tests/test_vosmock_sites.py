"""Many VOS mock sites in one process: `serve --sites N` and `testing.running_sites`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cckit.vosmock import multi
from cckit.vosmock.cli import main as vosmock_main
from cckit.vosmock.testing import SIGALGS_ECDSA, run_ssh, running_sites, tls_probe

pytestmark = pytest.mark.timeout(120)

NAMES = ["site-001", "site-002", "site-003"]


def all_ports(site) -> list[int]:
    ports = [site.sftp_port, int(site.control_url.rsplit(":", 1)[1])]
    for n in site.nodes.values():
        ports += [n.ssh_port, *n.web_ports]
        if n.rest_port:
            ports.append(n.rest_port)
    return ports


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def active(faults: dict) -> dict:
    """The faults in force (per node: only those set), plus cop_missing when set."""
    out = {n: {k: v for k, v in f.items() if v} for n, f in faults["nodes"].items()}
    out = {n: f for n, f in out.items() if f}
    if faults["cop_missing"]:
        out["cop_missing"] = faults["cop_missing"]
    return out


def version(site, node: str = "uccx-pub") -> subprocess.CompletedProcess:
    return run_ssh(
        site.nodes[node].ssh_port, site.known_hosts, site.password, "show version active\nquit\n"
    )


def test_three_sites_are_distinct_and_their_site_files_load(tmp_path):
    with running_sites(tmp_path, 3) as sites:
        assert [s.name for s in sites] == NAMES
        ports = [p for s in sites for p in all_ports(s)]
        assert len(ports) == len(set(ports))  # no port shared within or across sites
        hosts = [n.host for s in sites for n in s.nodes.values()]
        assert len(hosts) == len(set(hosts)) == 9
        assert len({s.password for s in sites}) == 3
        assert len({s.sftp_password for s in sites}) == 3
        assert len({s.state_dir for s in sites}) == 3
        for s in sites:
            assert s.state_dir == (tmp_path / "state" / s.name).resolve()
            assert s.site_file == (tmp_path / f"{s.name}.yaml").resolve()
            assert s.domain == f"{s.name}.cc.example.com"
            doc = yaml.safe_load(s.site_file.read_text())
            assert doc["site"] == s.name and doc["domain"] == s.domain
            assert doc["known_hosts"] == f"{s.name}.known_hosts"
            assert [n["name"] for n in doc["nodes"]] == ["uccx-pub", "uccx-sub", "sm"]
            for n in doc["nodes"]:
                assert n["host"].endswith("." + s.domain)
                assert n["ssh_port"] == s.nodes[n["name"]].ssh_port
            pw = Path(doc["credentials"]["os-admin"]["password"]["file"])
            assert pw.read_text().strip() == s.password and pw.is_relative_to(s.state_dir)
            assert doc["cop_repository"]["port"] == s.sftp_port
            kh = s.known_hosts.read_text().splitlines()
            assert [line.split()[0] for line in kh] == [
                f"[127.0.0.1]:{p}" for p in [n.ssh_port for n in s.nodes.values()] + [s.sftp_port]
            ]
            assert (
                f"http://127.0.0.1:{int(s.control_url.rsplit(':', 1)[1])}"
                in (s.site_file.read_text().splitlines()[1])
            )
            # a real client against each site (strict host key checking with its known_hosts)
            assert "Active Master Version: 11.5.1.10000-61" in version(s).stdout
        # one site's password is not accepted by another
        other = run_ssh(
            sites[0].nodes["sm"].ssh_port, sites[0].known_hosts, sites[1].password, "quit\n"
        )
        assert other.returncode == 255
        p = tls_probe(sites[2].nodes["sm"].web_ports[0], SIGALGS_ECDSA)
        assert p.ok and p.subject_cn == "sm1-EC.site-003.cc.example.com"
        sitemod = pytest.importorskip("cckit.sites")
        for s in sites:
            loaded = sitemod.load_site(s.site_file)
            assert [n.name for n in loaded.nodes] == list(s.nodes)
            assert loaded.cop_repository.port == s.sftp_port


def test_a_fault_on_one_site_does_not_affect_another(tmp_path):
    import requests

    http = requests.Session()
    http.trust_env = False
    with running_sites(tmp_path, 3) as sites:
        s1, s2, s3 = sites
        s2.faults.set("down", True, node="uccx-pub")
        assert refused(s2.nodes["uccx-pub"].ssh_port)
        assert refused(s2.nodes["uccx-pub"].web_ports[0])
        assert version(s2, "uccx-pub").returncode == 255
        assert version(s1, "uccx-pub").returncode == 0
        assert version(s3, "uccx-pub").returncode == 0
        assert active(s1.faults.as_dict()) == active(s3.faults.as_dict()) == {}
        assert s2.status()["faults"]["nodes"]["uccx-pub"]["down"] is True
        # each site's own control endpoint addresses that site only
        r = http.post(f"{s3.control_url}/faults", json={"fault": "down", "node": "sm"}, timeout=10)
        assert r.status_code == 200 and r.json()["nodes"]["sm"]["down"] is True
        assert refused(s3.nodes["sm"].ssh_port)
        assert not refused(s1.nodes["sm"].ssh_port) and not refused(s2.nodes["sm"].ssh_port)
        status = http.get(f"{s1.control_url}/status", timeout=10).json()
        assert status["site"] == "site-001" and active(status["faults"]) == {}
        s2.faults.clear()
        assert version(s2, "uccx-pub").returncode == 0
        # stopping one site leaves the others running on the shared loop
        s2.stop()
        assert refused(s2.nodes["uccx-sub"].ssh_port)
        assert version(s1, "uccx-sub").returncode == 0
    assert refused(s1.nodes["uccx-pub"].ssh_port)


def test_many_sites_persist_across_restart(tmp_path):
    def snapshot(sites):
        return [
            (
                s.name,
                s.password,
                s.sftp_password,
                dict(s.nodes),
                s.sftp_port,
                s.control_url,
                s.known_hosts.read_text(),
            )
            for s in sites
        ]

    # first boot in a process pool (the path `serve --sites 50` takes)
    with running_sites(tmp_path, 3, workers=2) as sites:
        before = snapshot(sites)
        node = sites[1].mock.nodes["uccx-pub"]
        sites[1].call(node.gen_csr("tomcat-ECDSA", False))
        csr = (sites[1].state_dir / "nodes/uccx-pub/csr/tomcat-ECDSA/tomcat-ECDSA.csr").read_bytes()
        cert = tls_probe(sites[0].nodes["uccx-sub"].web_ports[1], SIGALGS_ECDSA).pem
    assert multi.first_boot(multi.plan_sites(tmp_path / "state", 3)) == 0
    with running_sites(tmp_path, 3) as sites:
        assert snapshot(sites) == before
        assert [s.mock.nodes["uccx-pub"].csr_units() for s in sites] == [[], ["tomcat-ECDSA"], []]
        assert sites[1].mock.nodes["uccx-pub"].csr("tomcat-ECDSA")[0] == csr
        assert tls_probe(sites[0].nodes["uccx-sub"].web_ports[1], SIGALGS_ECDSA).pem == cert
        assert version(sites[2], "sm").returncode == 0  # old known_hosts still valid


def test_plan_base_port_layout_and_names(tmp_path):
    plans = multi.plan_sites(tmp_path, 3, base_port=20000, domain="lab.test", version="11.5")
    assert [(d.name, kw["site"], kw["domain"], kw["base_port"]) for d, kw in plans] == [
        ("site-001", "site-001", "site-001.lab.test", 20000),
        ("site-002", "site-002", "site-002.lab.test", 20040),
        ("site-003", "site-003", "site-003.lab.test", 20080),
    ]
    assert all(kw["version"] == "11.5" and "ports" not in kw for _, kw in plans)
    assert multi.site_name(7, 1000) == "site-0007"
    with pytest.raises(multi.SiteSetupError):
        multi.plan_sites(tmp_path, 3, base_port=65500)
    with pytest.raises(multi.SiteSetupError):
        multi.plan_sites(tmp_path, 0)


def test_fd_limit_is_raised_to_the_hard_limit_or_refused(monkeypatch):
    calls = []
    limits = {"soft": 256, "hard": 8192}
    monkeypatch.setattr(multi.resource, "getrlimit", lambda what: (limits["soft"], limits["hard"]))

    def setrlimit(what, value):
        calls.append(value)
        limits["soft"] = value[0]

    monkeypatch.setattr(multi.resource, "setrlimit", setrlimit)
    soft, want = multi.ensure_fd_limit(50)
    assert calls == [(8192, 8192)] and soft == 8192 and want <= 8192
    calls.clear()
    assert multi.ensure_fd_limit(50)[0] == 8192 and calls == []  # already enough
    limits.update(soft=256, hard=300)
    with pytest.raises(multi.SiteSetupError, match="file descriptors"):
        multi.ensure_fd_limit(50)


def test_cli_usage_errors(tmp_path, capsys):
    a_file = tmp_path / "f.yaml"
    a_file.write_text("")
    base = ["serve", "--state-dir", str(tmp_path / "st"), "--restart-seconds", "0"]
    assert vosmock_main([*base, "--site-file", str(tmp_path / "d"), "--sites", "0"]) == 2
    assert vosmock_main([*base, "--site-file", str(a_file), "--sites", "2"]) == 2
    assert vosmock_main([*base, "--site-file", str(tmp_path), "--sites", "2", "--site", "x"]) == 2
    args = [*base, "--site-file", str(tmp_path), "--sites", "2", "--control-port", "9"]
    assert vosmock_main(args) == 2
    assert "directory" in capsys.readouterr().err
    assert not (tmp_path / "st").exists()


def test_serve_sites_subprocess_writes_site_files_and_stops_on_sigterm(tmp_path):
    out = tmp_path / "sites"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cckit.vosmock",
            "serve",
            "--sites",
            "3",
            "--state-dir",
            str(tmp_path / "st"),
            "--site-file",
            str(out),
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
        assert "vosmock: 3 sites up" in line and str(out) in line, proc.stderr.read1().decode()
        assert sorted(p.name for p in out.iterdir()) == sorted(
            [f"{n}.yaml" for n in NAMES] + [f"{n}.known_hosts" for n in NAMES]
        )
        docs = [yaml.safe_load((out / f"{n}.yaml").read_text()) for n in NAMES]
        assert [d["site"] for d in docs] == NAMES
        assert sorted(p.name for p in (tmp_path / "st").iterdir()) == NAMES
        ssh_ports = [n["ssh_port"] for d in docs for n in d["nodes"]]
        assert len(set(ssh_ports)) == 9
        d = docs[2]
        password = Path(d["credentials"]["os-admin"]["password"]["file"]).read_text().strip()
        r = run_ssh(
            d["nodes"][2]["ssh_port"], out / d["known_hosts"], password, "show version active\n"
        )
        assert "Active Master Version" in r.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    assert all(refused(p) for p in ssh_ports)
