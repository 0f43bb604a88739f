"""A second VOS product through the topology only: CUCM 11.5 (publisher + subscriber).

Proves the redesign's promise: the CA-signed procedure runs on a product added as one
topology entry and its mock counterpart, with no procedure code that knows its roles.
"""

from __future__ import annotations

import pytest

from cckit import topology
from cckit.ca import get_adapter
from cckit.orchestration import restart_order
from cckit.procedures import SiteSession
from cckit.procedures.ca_signed import CaSigned, trust_targets
from cckit.results import Action
from cckit.sites import load_site
from cckit.vosmock import running_site

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def cucm(tmp_path):
    with running_site(tmp_path / "mock", restart_seconds=0.2, product="cucm") as m:
        yield m


def test_cucm_site_is_read_through_the_topology(cucm):
    site = load_site(cucm.site_file)
    assert [n.role for n in site.nodes] == [topology.Role.CUCM_PUBLISHER,
                                            topology.Role.CUCM_SUBSCRIBER]
    assert [(wp.port, wp.service) for wp in site.publisher.web_ports] == [(8443, "Cisco Tomcat")]
    assert [n.name for n in restart_order(site.nodes)] == ["cucm-sub", "cucm-pub"]
    assert topology.ecdsa_in_use("cucm-publisher", "12.5.1.11900-146")  # CUCM keeps ECDSA
    assert not topology.ecdsa_in_use("uccx-publisher", "12.5.1.10000-13")


def test_ca_signed_runs_on_a_cucm_site(cucm, tmp_path):
    site = load_site(cucm.site_file)
    with SiteSession(site, workdir=tmp_path / "run", tls_timeout=3) as s:
        assert [n.name for n in trust_targets(s)] == ["cucm-pub"]  # replicates to cucm-sub
        proc = CaSigned(s, get_adapter("lab", directory=tmp_path / "ca"))
        results = proc.run_all()
        assert all(r.ok for r in results), results
        restart = {r.node: r.action for r in results[-2].records}
        assert restart == {"cucm-sub": Action.RESTARTED, "cucm-pub": Action.RESTARTED}
        assert results[-1].verdict.startswith("every port presents the CA-signed")
        # the subscriber received the CA by replication, not by an upload of its own
        trust = {(r.node, r.action) for r in results[3].records}
        assert {n for n, a in trust if a is Action.UPLOADED} == {"cucm-pub"}
        assert {a for n, a in trust if n == "cucm-sub"} <= {Action.REPLICATED,
                                                            Action.ALREADY_PRESENT}
