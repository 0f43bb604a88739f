"""How long a renewal of a site takes: what a window must have left before one starts.

The rule: the longest of the site's last :data:`HISTORY` renewals of that scenario (the ledger),
times :data:`MARGIN`; with no renewal on record, the same margin over a prior built from the
site's nodes and a real node's durations (the VOS mock's latency profile,
``cckit/vosmock/latency.py``, with its sources), step by step as the runbook schedules them:
one CLI login, a CSR on every node at once, the CA, trust uploads at once, the wait for
trust to replicate when a renewed node receives it from its publisher, identity uploads at
once, then each HA restart wave in turn (the slowest node of a wave; on a node its services
one after another, each followed by the wait for TLS, then the node's readiness check, e.g.
Finesse in service, as the restart waits for it), and the verification. Rounded up to the
minute.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from ..orchestration import readiness_checked, restart_waves
from ..sites import Node, Site

__all__ = ["HISTORY", "MARGIN", "expected_duration", "prior_seconds"]

#: how many of the site's latest renewals the estimate looks at
HISTORY = 5
#: the safety margin over the estimate
MARGIN = 1.5
#: allowances for what the profile has no figure for (seconds) [assumed]
CA_SECONDS = 300.0  # an ACME order with DNS-01 propagation, or an AD CS request
TLS_BACK_SECONDS = 60.0  # after a restart, until every web port completes a handshake
VERIFY_SECONDS = 30.0
LOGIN_SECONDS = 60.0  # [doc] 8 s to a minute to the first admin: prompt (latency.py)
READY_SECONDS = 120.0  # a readiness check the profile has no figure for


def _profile() -> dict[str, float]:
    from ..vosmock.latency import PROFILE

    return PROFILE


def _ready_seconds(node: Node, p: dict[str, float]) -> float:
    """How long the restart of ``node`` waits for its readiness check (``finesse_ready``)."""
    check = readiness_checked(node)
    return 0.0 if check is None else p.get(f"{check.name.lower()}_ready", READY_SECONDS)


def prior_seconds(site: Site, nodes: Sequence[str], unit: str) -> float:
    """The estimate without history, for renewing ``unit`` on ``nodes`` of ``site``."""
    p = _profile()
    chosen = [n for n in site.nodes if n.name in set(nodes)]
    seconds = (LOGIN_SECONDS + p["csr_generate"] + CA_SECONDS + 2 * p["trust_import"]
               + p["cert_import"] + VERIFY_SECONDS)
    if site.replicas(chosen):  # the runbook waits until their publisher's trust reaches them
        seconds += p["trust_replication"]
    for wave in restart_waves(chosen):
        seconds += max(sum(p.get(f"restart:{s}", p["restart"]) + TLS_BACK_SECONDS
                           for s in n.restart_services(unit))
                       + _ready_seconds(n, p) for n in wave)
    return seconds


def expected_duration(site: Site, nodes: Sequence[str], unit: str,
                      history: Sequence[float] = ()) -> dt.timedelta:
    """What a window must still have ahead for this renewal to start (the rule above)."""
    recent = [s for s in history if s > 0][-HISTORY:]
    base = max(recent) if recent else prior_seconds(site, nodes, unit)
    return dt.timedelta(minutes=math.ceil(base * MARGIN / 60))
