"""Procedure steps against the in-process fake transport: fast, no SSH, real X.509.

The end-to-end tests (test_procedures.py) run the same procedures over real SSH against the
VOS mock; these pin the step logic (idempotency, what each step refuses) in milliseconds.
"""

from __future__ import annotations

import pytest

from cckit.ca import get_adapter
from cckit.errors import CommandError, GateError, ProcedureError
from cckit.procedures.ca_signed import CaSigned
from cckit.procedures.rsa_only import RsaOnly
from cckit.results import Action, Outcome
from cckit.session import SiteSession
from cckit.sites import parse_site
from cckit.vos import fake

SITE = {
    "site": "fake",
    "domain": "cc.example.com",
    "credentials": {"os-admin": {"username": "admin", "password": {"env": "CCKIT_FAKE_PW"}},
                    "sftp": {"username": "cop", "password": {"env": "CCKIT_FAKE_PW"}}},
    "nodes": [
        {"name": "pub", "role": "uccx-publisher", "host": "uccx1"},
        {"name": "sub", "role": "uccx-subscriber", "host": "uccx2"},
        {"name": "sm", "role": "socialminer", "host": "sm1"},
    ],
    "cop_repository": {"host": "127.0.0.1", "port": 22, "directory": "/cop",
                       "credential": "sftp"},
    "cop_files": {"uccx_disable": "u-disable.cop.sgn", "socialminer_disable": "s-disable.cop.sgn"},
}


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    monkeypatch.setenv("CCKIT_FAKE_PW", "not-a-real-password")
    site = parse_site(SITE, base_dir=tmp_path)
    nodes = fake.site_nodes(site)
    with SiteSession(site, workdir=tmp_path / "run", lock_dir=tmp_path / "locks",
                     connect=fake.connector(nodes)) as s:
        yield s, nodes


def test_web_ports_default_to_the_roles_services(fake_site):
    s, _ = fake_site
    pub = s.site.node("pub")
    assert [(wp.port, wp.service) for wp in pub.web_ports][:2] == [
        (8443, "Cisco Tomcat"), (8445, "Cisco Finesse Tomcat")]
    assert pub.fqdn == "uccx1.cc.example.com"


def test_ca_signed_steps_up_to_the_restart_and_a_rerun(fake_site, tmp_path):
    s, nodes = fake_site
    proc = CaSigned(s, get_adapter("lab", directory=tmp_path / "ca"))
    assert {r.action for r in proc.generate_csrs().records} == {Action.GENERATED}
    proc.sign()
    assert proc.gate().ok
    trust = proc.upload_trust()
    # uploaded on the publisher and SocialMiner; the subscriber receives it by replication
    # (the fake replicates at once: it is already there at the first look)
    assert {r.node for r in trust.records if r.action is Action.UPLOADED} == {"pub", "sm"}
    assert {r.action for r in trust.records if r.node == "sub"} == {Action.ALREADY_PRESENT}
    ids = proc.upload_identities()
    assert {r.action for r in ids.records} == {Action.IMPORTED}
    assert all(r.replaced and r.replaced != r.sha256 for r in ids.records)  # before != after
    # a rerun: nothing generated, uploaded or imported again
    again = CaSigned(s, get_adapter("lab", directory=tmp_path / "ca"))
    r = again.generate_csrs()
    assert {x.action for x in r.records} == {Action.ALREADY_CA_SIGNED}
    assert all(sum(line.startswith("generate_csr") for line in n.journal) == 1
               for n in nodes.values())


def test_rsa_signed_certificates_stop_at_the_gate_and_change_nothing(fake_site, tmp_path):
    s, nodes = fake_site
    proc = CaSigned(s, get_adapter("lab", directory=tmp_path / "ca", algorithm="rsa"))
    proc.generate_csrs()
    proc.sign()
    with pytest.raises(GateError) as e:
        proc.gate()
    assert "rsa_only" in str(e.value)
    assert not any(line.startswith("upload") for n in nodes.values() for line in n.journal)


def test_identity_for_another_csr_is_refused_by_the_node(fake_site, tmp_path):
    s, _ = fake_site
    proc = CaSigned(s, get_adapter("lab", directory=tmp_path / "ca"))
    proc.generate_csrs()
    proc.sign()
    proc.gate()
    proc.upload_trust()
    with s.on(s.site.node("sub")) as t:
        t.generate_csr()  # someone regenerated the subscriber's CSR meanwhile
    with pytest.raises(CommandError, match="pending CSR"):
        proc.upload_identities()


def test_cop_install_is_idempotent(fake_site):
    s, nodes = fake_site
    proc = RsaOnly(s, "disable")
    assert {r.action for r in proc.install_cops().records} == {Action.INSTALLED}
    again = proc.install_cops()
    assert again.outcome is Outcome.NOTHING_TO_DO
    assert nodes["pub"].cops == ["u-disable.cop.sgn"]


@pytest.mark.parametrize("step", ["sign", "gate", "upload_trust", "upload_identities",
                                  "restart", "verify"])
def test_a_step_out_of_order_refuses_and_changes_nothing(fake_site, tmp_path, step):
    s, nodes = fake_site
    proc = CaSigned(s, get_adapter("lab", directory=tmp_path / "ca"))
    with pytest.raises(ProcedureError, match="first; nothing was done") as e:
        getattr(proc, step)()
    # the earliest step missing, whichever step was run too early: one refusal is enough
    assert f"{step} needs generate_csrs" in str(e.value)
    assert "run the generate_csrs cell first" in str(e.value)
    assert all(n.journal == [] for n in nodes.values())


def test_restart_before_the_cop_install_refuses(fake_site):
    s, nodes = fake_site
    with pytest.raises(ProcedureError, match="install_cops first"):
        RsaOnly(s, "disable").restart()
    assert all(n.journal == [] for n in nodes.values())
