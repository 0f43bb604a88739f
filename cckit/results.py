"""Typed records: what steps find and do, as data. They become tables only in :mod:`display`.

Every step returns a :class:`StepResult` holding an :class:`Outcome`, a one-line verdict and
a tuple of small frozen records (one per node, port or certificate). Code that decides
(procedures, batch summaries, the run status) reads the records' fields and enums, never a
rendered table.
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from cryptography import x509

from .audit import subject_of
from .certs import CertInfo, GateReason
from .scenarios import SCENARIOS

__all__ = [
    "DONE",
    "NONE",
    "Action",
    "Advice",
    "CertRecord",
    "CopRecord",
    "CsrRecord",
    "GateRecord",
    "IdentityRecord",
    "NodeRecord",
    "OperationRecord",
    "Outcome",
    "Plan",
    "PlannedCommand",
    "PortChange",
    "PortView",
    "RestartRecord",
    "SignedRecord",
    "StepRecord",
    "StepResult",
    "TrustRecord",
    "VerifyRecord",
    "VersionRecord",
]


def col(label: str, **kw: Any) -> Any:
    """A record field shown as column ``label`` (``display`` reads it)."""
    return field(metadata={"label": label}, **kw)


class Outcome(enum.StrEnum):
    """How a step ended; ``display`` turns it into a badge that reads without an emoji font."""

    OK = "ok"
    NOTHING_TO_DO = "nothing to do"
    SKIPPED = "skipped"
    PLAN_ONLY = "plan only"
    WAITING = "waiting"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class Action(enum.StrEnum):
    """What a step did on one node (or why it did nothing)."""

    GENERATED = "generated"
    REUSED = "reused pending CSR"
    ALREADY_CA_SIGNED = "already CA-signed"
    UPLOADED = "uploaded"
    REPLICATED = "replicated"
    ALREADY_PRESENT = "already present"
    IMPORTED = "imported"
    ALREADY_STORED = "already stored"
    RESTARTED = "restarted"
    SKIPPED_PRESENTING = "skipped (already presenting)"
    SKIPPED_IN_EFFECT = "skipped (already in effect)"
    INSTALLED = "installed"
    ALREADY_INSTALLED = "already installed"

    @property
    def changed(self) -> bool:
        return self in (Action.GENERATED, Action.UPLOADED, Action.IMPORTED, Action.RESTARTED,
                        Action.INSTALLED)


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class NodeRecord:
    node: str = col("node")
    role: str = col("role")
    host: str = col("host")
    transport: str = col("transport")
    web_ports: str = col("web ports")


@dataclass(frozen=True)
class PortView:
    """What one web port presented to one kind of TLS 1.2 client."""

    node: str = col("node")
    port: int = col("port")
    service: str | None = col("service")
    client: str = col("client")  # "browser" | "ecdsa" | "rsa"
    status: str = col("status")
    cert: CertInfo | None = col("certificate", default=None)
    #: the presented certificate itself (trust bundles, exact comparisons)
    leaf: x509.Certificate | None = field(default=None, repr=False, compare=False)
    #: what agents reach on this port, in their words (``Live Data``; topology)
    serves: str | None = col("serves", default=None)

    @property
    def sha256(self) -> str | None:
        return self.cert.sha256 if self.cert else None

    @property
    def port_label(self) -> str:
        what = self.serves or self.service
        return f"{self.port} ({what})" if what else str(self.port)

    def as_json(self) -> dict[str, Any]:
        """The ``presented`` entries of ``status.json`` (schema in docs/status.md)."""
        c = self.cert
        return {"node": self.node, "port": self.port, "service": self.service,
                "client": self.client, "status": self.status,
                "cn": c.subject_cn if c else None, "issuer": c.issuer_cn if c else None,
                "key_type": c.key_type if c else None,
                "self_signed": c.self_signed if c else None,
                "sha256": c.sha256 if c else None}


@dataclass(frozen=True)
class PortChange:
    """One (node, port, client) before and after a change."""

    before: PortView | None = col("before")
    after: PortView = col("after")

    @property
    def changed(self) -> bool:
        return (self.before.sha256 if self.before else None) != self.after.sha256


@dataclass(frozen=True)
class VersionRecord:
    node: str = col("node")
    role: str = col("role")
    host: str = col("host")
    transport: str = col("transport")
    version: str | None = col("version")
    cops: tuple[str, ...] = col("installed COPs")
    ecdsa_in_use: bool | None = col("ECDSA used")
    error: str = col("error", default="")


@dataclass(frozen=True)
class CertRecord:
    """One stored certificate unit on a node, and what its ports present."""

    node: str = col("node")
    unit: str = col("unit")
    stored: str = col("stored")
    self_signed: bool | None = col("self-signed")
    signed_by: str | None = col("signed by")
    pending_csr: bool | None = col("pending CSR")
    presented: str = col("presented")
    #: the ports on which a browser is shown this unit (Cisco 210528), with what they serve
    browsers: str = col("browsers are shown it on", default="")


@dataclass(frozen=True)
class CsrRecord:
    node: str = col("node")
    action: Action = col("action")
    cn: str = col("cn")
    sans: tuple[str, ...] = col("sans")
    key: str = col("key")
    public_key_sha256: str = col("public key sha256")
    note: str = col("note", default="")


@dataclass(frozen=True)
class SignedRecord:
    node: str = col("node")
    cn: str = col("cn")
    issuer: str = col("issuer")
    signed_with: str = col("signed with")
    chain: tuple[str, ...] = col("chain")
    sha256: str = col("sha256")
    source: str = col("source")


@dataclass(frozen=True)
class GateRecord:
    node: str = col("node")
    ok: bool = col("passes")
    reasons: tuple[GateReason, ...] = col("reasons")
    sha256: str = col("sha256")


@dataclass(frozen=True)
class TrustRecord:
    """A CA certificate in one node's tomcat-trust: uploaded there, already there, or
    replicated from the publisher (``arrived_after``: seconds waited after the upload)."""

    node: str = col("node")
    certificate: str = col("certificate")
    action: Action = col("action")
    sha256: str = col("sha256")
    arrived_after: float | None = col("arrived after", default=None)


@dataclass(frozen=True)
class IdentityRecord:
    node: str = col("node")
    action: Action = col("action")
    sha256: str = col("sha256 after")
    replaced: str | None = col("sha256 before", default=None)


@dataclass(frozen=True)
class RestartRecord:
    """One node's restart: from its first service going down, when every web port served
    TLS again, and when it passed its readiness check (Finesse IN_SERVICE on UCCX; a node
    left alone is checked too before the next wave)."""

    node: str = col("node")
    action: Action = col("action")
    service: str = col("service", default="")
    serving_after: float | None = col("serving TLS again after", default=None)
    in_service_after: float | None = col("in service after", default=None)
    #: what "in service" meant for it (topology): "Finesse in service", or "" (TLS only)
    check: str = col("back when", default="")


@dataclass(frozen=True)
class VerifyRecord:
    view: PortView = col("port")
    expected: str = col("expected")
    ok: bool = col("as expected")


@dataclass(frozen=True)
class CopRecord:
    node: str = col("node")
    cop: str = col("cop")
    action: Action = col("action")


#: the advice when no scenario is to run: the procedure does not apply, or it is done
NONE, DONE = "none", "done"


@dataclass(frozen=True)
class Advice:
    """Which scenario preflight recommends for a site, why, and how to run it next."""

    #: a scenario's name (:mod:`cckit.scenarios`), or :data:`NONE` / :data:`DONE`
    scenario: str
    reasons: tuple[str, ...]
    #: the runbook to run next with its exact parameters, and the same as a command line
    next_step: str = ""
    command: str = ""

    @property
    def headline(self) -> str:
        if self.scenario == DONE:
            return "Nothing to do: the site is CA-signed"
        if self.scenario == NONE:
            return "Nothing to do: the procedure does not apply"
        return f"Recommended scenario: {self.scenario}"

    def with_next(self, site_file: str, site: str) -> Advice:
        """This advice naming the runbook to run next on ``site`` and its exact parameters."""
        sc = SCENARIOS.get(self.scenario)
        if sc is None or sc.advice is None:
            return self
        params = {"site_file": site_file, **({"confirm": site} if sc.takes_confirm else {}),
                  **sc.advice}
        text = (f"next: runbooks/{self.scenario}.ipynb with "
                + ", ".join(f"{k}={v!r}" for k, v in params.items()))
        command = " ".join([f"cckit run {self.scenario} --site {shlex.quote(site_file)}",
                            *(f"-p {k} {shlex.quote(v)}" for k, v in params.items()
                              if k != "site_file")])
        return replace(self, next_step=text, command=command)


@dataclass(frozen=True)
class OperationRecord:
    """One state-changing operation of a run, as its operation log has it."""

    time: str = col("time")
    node: str = col("node")
    operation: str = col("operation")
    #: what it worked on: the service restarted, the certificate or COP file, the unit
    subject: str = col("on")
    outcome: str = col("outcome")
    before: tuple[str, ...] = col("before")
    after: tuple[str, ...] = col("after")

    @classmethod
    def from_log(cls, entry: Mapping[str, Any]) -> OperationRecord:
        """From one line of ``operations.jsonl`` (:func:`cckit.audit.read`)."""
        def fps(key: str) -> tuple[str, ...]:
            return tuple(f"{unit} {fp}" for unit, fp in (entry.get(key) or {}).items() if fp)

        return cls(str(entry.get("time") or ""), str(entry.get("node") or ""),
                   str(entry.get("operation") or ""), subject_of(entry.get("arguments")),
                   str(entry.get("outcome") or ""), fps("fingerprints_before"),
                   fps("fingerprints_after"))


@dataclass(frozen=True)
class StepRecord:
    """One line of a run's summary and of ``status.json``'s ``steps``."""

    time: str = col("time")
    step: str = col("step")
    outcome: Outcome = col("outcome")
    message: str = col("message")

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": self.outcome.value}


# ------------------------------------------------------------------------------ results


@dataclass(repr=False)
class StepResult:
    """What one step did: an outcome, a one-line verdict and its records."""

    step: str
    verdict: str
    records: tuple[Any, ...] = ()
    outcome: Outcome = Outcome.OK

    def __post_init__(self) -> None:
        self.records = tuple(self.records)

    @property
    def ok(self) -> bool:
        return self.outcome is not Outcome.FAILED

    @classmethod
    def tally(cls, step: str, records: Sequence[Any], done: Action, verdict: str
              ) -> StepResult:
        """A step that changed what had to change: ``verdict`` is formatted with ``n`` (the
        records whose action is ``done``) and ``rest``; nothing done is NOTHING TO DO."""
        n = sum(getattr(r, "action", None) is done for r in records)
        return cls(step, verdict.format(n=n, rest=len(records) - n), records,
                   Outcome.OK if n else Outcome.NOTHING_TO_DO)

    def __repr__(self) -> str:
        # The verdict only: notebooks show the table as HTML (display.py); a plain-text
        # table's padding would change with every fingerprint and port.
        return f"[{self.outcome.value.upper()}] {self.step}: {self.verdict}"


@dataclass(frozen=True)
class PlannedCommand:
    #: the schedule: commands of one stage run at once on their nodes (one after the other
    #: on one node); a stage starts when the one before has ended
    stage: int = col("stage")
    node: str = col("node")
    step: str = col("step")
    command: str = col("command")
    why: str = col("why")


@dataclass(repr=False)
class Plan:
    """The exact per-node commands a procedure would send; building it changes nothing."""

    procedure: str
    commands: list[PlannedCommand] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, node: str, step: str, command: str, why: str, *, stage: int = 1) -> None:
        self.commands.append(PlannedCommand(stage, node, step, command, why))

    def schedule(self) -> list[str]:
        """Which operations run together: one line per stage, its nodes in site order."""
        stages: dict[int, dict[str, list[str]]] = {}
        for c in self.commands:
            nodes = stages.setdefault(c.stage, {}).setdefault(c.step, [])
            if c.node not in nodes:
                nodes.append(c.node)
        return [f"stage {n}: " + "; ".join(
                    f"{step} on {', '.join(nodes)}" + (" at once" if len(nodes) > 1 else "")
                    for step, nodes in steps.items())
                for n, steps in sorted(stages.items())]

    def __repr__(self) -> str:
        return f"Plan for {self.procedure}: {len(self.commands)} command(s)"
