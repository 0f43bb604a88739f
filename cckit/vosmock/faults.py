"""Faults the mock can inject on demand (in-process API and control endpoint)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

NODE_FAULTS = ("drop_import", "restart_no_started", "slow_output", "down",
               "replication_stalled", "finesse_out_of_service")
SITE_FAULTS = ("cop_missing",)


@dataclass
class NodeFaults:
    # drop the SSH session after the certificate is pasted, before any state change (one-shot:
    # cleared when it fires)
    drop_import: bool = False
    # `utils service restart` / system restart never prints `Cisco Tomcat[STARTED]`
    # (the service does come up; only the banner is missing)
    restart_no_started: bool = False
    # delay in seconds before each output line of the CLI
    slow_output: float = 0.0
    # node down: SSH and all TLS listeners refuse connections
    down: bool = False
    # trust changes replicated to this node (a subscriber) are held, not applied: they
    # arrive when the fault is cleared
    replication_stalled: bool = False
    # Finesse's SystemInfo says OUT_OF_SERVICE whatever its clock says (UCCX nodes)
    finesse_out_of_service: bool = False


@dataclass
class Faults:
    nodes: dict[str, NodeFaults] = field(default_factory=dict)
    # COP file names hidden from the SFTP repository ("*" hides every file)
    cop_missing: list[str] = field(default_factory=list)

    def node(self, name: str) -> NodeFaults:
        return self.nodes.setdefault(name, NodeFaults())

    def as_dict(self) -> dict:
        return {
            "nodes": {n: asdict(f) for n, f in self.nodes.items()},
            "cop_missing": list(self.cop_missing),
        }
