"""What every procedure shares: the site session, step results, plans, waiting for TLS."""

from __future__ import annotations

import contextlib
import html
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import probe as _probe
from ..audit import AuditLog, operation, site_lock
from ..errors import CckitError, TransportError
from ..inventory import Node, Site
from ..vos import Transport, connect

__all__ = [
    "Plan",
    "PlannedCommand",
    "SiteSession",
    "StepResult",
    "port_label",
    "restart_nodes",
    "restart_order",
]


# Left-aligned, top-aligned cells; !important beats JupyterLab's right-aligned tables.
_TABLE_STYLE = ("<style>table.cckit td, table.cckit th {text-align: left !important; "
                "vertical-align: top !important;}</style>")


def _html_table(df: Any) -> str:
    return _TABLE_STYLE + df.to_html(index=False, escape=True, classes="cckit", border=0)


@dataclass
class StepResult:
    """What one step did: a one-line verdict and a table, shown after every notebook cell."""

    step: str
    verdict: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    ok: bool = True
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    def table(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows)

    def __str__(self) -> str:
        mark = "OK" if self.ok else "FAILED"
        text = f"[{mark}] {self.step}: {self.verdict}"
        if self.rows:
            text += "\n" + self.table().to_string(index=False)
        return text

    def _repr_html_(self) -> str:
        mark = "✅" if self.ok else "❌"
        out = f"<p><b>{mark} {html.escape(self.step)}</b>: {html.escape(self.verdict)}</p>"
        if self.rows:
            out += _html_table(self.table())
        return out

    def __repr__(self) -> str:
        # The verdict only: notebooks show the table as HTML; a plain-text table's padding
        # would change with every fingerprint and port.
        return f"[{'OK' if self.ok else 'FAILED'}] {self.step}: {self.verdict}"


@dataclass(frozen=True)
class PlannedCommand:
    node: str
    step: str
    command: str
    why: str


@dataclass
class Plan:
    """The exact per-node commands a procedure would send; building it changes nothing."""

    procedure: str
    commands: list[PlannedCommand] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, node: str, step: str, command: str, why: str) -> None:
        self.commands.append(PlannedCommand(node, step, command, why))

    def table(self) -> Any:
        import pandas as pd

        return pd.DataFrame([c.__dict__ for c in self.commands],
                            columns=["node", "step", "command", "why"])

    def __str__(self) -> str:
        text = f"Plan for {self.procedure}: {len(self.commands)} command(s)"
        if self.commands:
            text += "\n" + self.table().to_string(index=False)
        for n in self.notes:
            text += f"\nNote: {n}"
        return text

    def __repr__(self) -> str:
        return f"Plan for {self.procedure}: {len(self.commands)} command(s)"

    def _repr_html_(self) -> str:
        out = (f"<p><b>Plan for {html.escape(self.procedure)}</b>: "
               f"{len(self.commands)} command(s), nothing sent yet</p>")
        if self.commands:
            out += _html_table(self.table())
        out += "".join(f"<p>Note: {html.escape(n)}</p>" for n in self.notes)
        return out


def port_label(node: Node, port: int) -> str:
    """``web port N``: stable across runs (the mock's port numbers are not)."""
    return f"web port {node.web_ports.index(port) + 1}" if port in node.web_ports else str(port)


def restart_order(nodes: Sequence[Node]) -> list[Node]:
    """HA-safe order: the UCCX subscriber first, then the publisher, then SocialMiner."""
    rank = {"uccx-subscriber": 0, "uccx-publisher": 1, "socialminer": 2}
    return sorted(nodes, key=lambda n: rank.get(n.role, 3))


def restart_nodes(session: SiteSession, expected: Mapping[str, str] | None = None, *,
                  service: str = "Cisco Tomcat", timeout: float = 600,
                  skip: Callable[[Node], bool] | None = None) -> StepResult:
    """Restart ``service`` node by node in HA-safe order, each serving TLS again before the
    next goes down. A node is skipped when it already presents ``expected[node]`` (sha256)
    to an ECDSA client, or when ``skip(node)`` says so."""
    rows = []
    for node in restart_order(session.nodes):
        if expected is not None and node.name in expected and node.web_ports:
            now = {r.cert.sha256 for r in session.presented(node, "ecdsa") if r.cert}
            if now == {expected[node.name]}:
                rows.append({"node": node.name, "action": "skipped (already presenting)",
                             "serving TLS again after": ""})
                continue
        if skip is not None and skip(node):
            rows.append({"node": node.name, "action": "skipped (already in effect)",
                         "serving TLS again after": ""})
            continue
        with session.on(node) as t, operation(session.audit, node.name, "restart_service",
                                              {"service": service}):
            t.restart_service(service, timeout=timeout)
        waited = session.wait_serving(node, timeout=timeout) if node.web_ports else 0.0
        rows.append({"node": node.name, "action": f"restarted {service}",
                     "serving TLS again after": f"{waited:.1f} s"})
    n = sum(r["action"].startswith("restarted") for r in rows)
    return StepResult("restart", f"{n} node(s) restarted in HA-safe order, "
                      f"{len(rows) - n} skipped", rows)


class SiteSession:
    """One run against one site: connections, the operation log and the site lock.

    Connections open lazily and are reopened after a dropped session, so a step that
    failed half-way can simply be called again.
    """

    def __init__(
        self,
        site: Site,
        *,
        workdir: str | Path,
        nodes: Sequence[str] | None = None,
        trust_on_first_use: bool = False,
        timeout: float = 30.0,
        lock_dir: str | Path | None = None,
        tls_timeout: float = 5.0,
    ) -> None:
        self.site = site
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = site.select(nodes)
        self.timeout = timeout
        self.tls_timeout = tls_timeout
        self.trust_on_first_use = trust_on_first_use
        self.audit = AuditLog(self.workdir / "operations.jsonl", site=site.name)
        self._lock_cm = site_lock(Path(lock_dir) if lock_dir else None, site.name,
                                  key=site.identity, run=self.workdir)
        self._lock_cm.__enter__()
        self._conns: dict[str, Transport] = {}

    # -- lifetime
    def close(self) -> None:
        for t in self._conns.values():
            with contextlib.suppress(Exception):
                t.close()
        self._conns.clear()
        if self._lock_cm is not None:
            self._lock_cm.__exit__(None, None, None)
            self._lock_cm = None

    def __enter__(self) -> SiteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connections
    def transport(self, node: Node) -> Transport:
        t = self._conns.get(node.name)
        if t is None:
            t = connect(self.site, node, trust_on_first_use=self.trust_on_first_use,
                        timeout=self.timeout)
            self._conns[node.name] = t
        return t

    def drop(self, node: Node) -> None:
        t = self._conns.pop(node.name, None)
        if t is not None:
            with contextlib.suppress(Exception):
                t.close()

    @contextlib.contextmanager
    def on(self, node: Node) -> Iterator[Transport]:
        """The node's transport; a broken session is dropped so the next call reconnects,
        and so is one a Ctrl-C cut off mid-command (the rest of its output unread would be
        taken for the next command's)."""
        try:
            yield self.transport(node)
        except (TransportError, KeyboardInterrupt):
            self.drop(node)
            raise

    # -- TLS
    def presented(self, node: Node, client: str = "ecdsa", *, cafile: Path | None = None
                  ) -> list[_probe.Presented]:
        """What each of the node's web ports presents to an ``client``-only TLS 1.2 client."""
        out = []
        for port in node.web_ports:
            out.extend(_probe.probe(node.address, port, timeout=self.tls_timeout,
                                    versions=("1.2",), cafile=cafile, clients=(client,)))
        return out

    def wait_serving(self, node: Node, *, timeout: float = 600.0) -> float:
        """Wait until every web port of ``node`` completes a TLS handshake; seconds waited."""
        start = time.monotonic()
        while True:
            results = [r for port in node.web_ports
                       for r in _probe.probe(node.address, port, timeout=self.tls_timeout,
                                             versions=("1.2",))]
            if all(r.status == "ok" or (r.client == "ecdsa" and r.status == "handshake_failed")
                   for r in results) and any(r.status == "ok" for r in results):
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise CckitError(
                    f"web ports {list(node.web_ports)} not serving TLS after {timeout:.0f}s",
                    node=node.name,
                    hint="check 'utils service list' on the node; Cisco Tomcat must be STARTED",
                )
            time.sleep(0.5)
