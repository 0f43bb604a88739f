"""The mock's operation journal and its seeded certificate defects (issue 13)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509

from cckit.vosmock import journal
from cckit.vosmock.seed import DEFECTS, defects_for
from cckit.vosmock.testing import SshCli, running_site

pytestmark = pytest.mark.timeout(120)


def test_fleet_seed_gives_one_defect_per_site_and_a_clean_one():
    n = len(DEFECTS)
    names = [defects_for(f"site-{i:03d}", "fleet") for i in range(1, n + 3)]
    assert [x[0] for x in names[:n]] == list(DEFECTS)
    assert names[n] == [] and names[n + 1] == [next(iter(DEFECTS))]
    assert defects_for("vosmock", "expired, old-csr") == ["expired", "old-csr"]
    with pytest.raises(ValueError, match="unknown seed 'nope'"):
        defects_for("site-001", "nope")


def test_journal_records_commands_not_answers(tmp_path):
    with running_site(tmp_path / "m", restart_seconds=0) as site:
        node = site.nodes["uccx-pub"]
        root = (site.state_dir / "nodes" / "uccx-pub" / "own" / "tomcat" /
                "tomcat.pem").read_text()
        with SshCli(node.ssh_port, site.known_hosts, site.password) as cli:
            cli.login()
            cli.cmd("show version active")
            cli.send("set cert import trust tomcat\n")
            cli.expect("Paste the Certificate")
            cli.cmd(root.strip())
        entries = journal.read(site.state_dir)
    assert [(e["node"], e["via"], e["command"]) for e in entries] == [
        ("uccx-pub", "cli", "show version active"),
        ("uccx-pub", "cli", "set cert import trust tomcat")]
    text = json.dumps(entries)
    assert "BEGIN CERTIFICATE" not in text and site.password not in text


def test_seeded_defects_and_a_pinned_release_survive_a_restart(tmp_path):
    with running_site(tmp_path / "m", restart_seconds=0, seed="expired,old-csr") as site:
        state = site.state_dir
        node = state / "nodes" / "uccx-sub"
        cert = x509.load_pem_x509_certificate(
            (node / "own" / "tomcat-ECDSA" / "tomcat-ECDSA.pem").read_bytes())
        assert cert.not_valid_after_utc < dt.datetime.now(dt.UTC)
        assert (node / "active" / "tomcat-ECDSA" / "tomcat-ECDSA.pem").read_bytes().startswith(
            (node / "own" / "tomcat-ECDSA" / "tomcat-ECDSA.pem").read_bytes().strip())
        assert (state / "nodes" / "uccx-pub" / "csr" / "tomcat-ECDSA" /
                "tomcat-ECDSA.csr").exists()
        assert json.loads((state / "seed.json").read_text())["defects"] == ["expired",
                                                                            "old-csr"]
    with running_site(tmp_path / "p", restart_seconds=0, seed="no-client-auth") as site:
        assert {n["version"] for n in site.status()["nodes"].values()} == {"12.5.1.10000-30"}
    # started again with an explicit 11.5 version: the seed's release stays
    with running_site(tmp_path / "p", restart_seconds=0, version="11.5.1.10000-61") as site:
        assert {n["version"] for n in site.status()["nodes"].values()} == {"12.5.1.10000-30"}


def test_serve_refuses_an_unknown_seed(tmp_path, capsys):
    from cckit.vosmock.cli import main

    assert main(["serve", "--state-dir", str(tmp_path / "s"), "--site-file",
                 str(tmp_path / "s.yaml"), "--seed", "bogus"]) == 2
    assert "unknown seed 'bogus'" in capsys.readouterr().err
