"""The scenarios, each declared once: what every part of cckit knows about a runbook.

A :class:`Scenario` says which procedure class runs it, whether it changes nodes, uses a CA
or needs a ``confirm``, which release the embedded mock plays for it, which TLS clients its
before/after shows, what preflight's advice passes it, which certificate unit it renews (the
fix of an inventory finding about that unit) and what ``cckit demo`` runs it with. The CLI,
headless runs, batches, the demo, preflight's advice and the fleet rules read it here;
nothing else names a scenario by string. Adding one is its entry in :data:`SCENARIOS`, its
procedure class in ``procedures/`` and its notebook ``runbooks/<name>.ipynb`` (with its
golden copy, ``make golden``): ``tests/test_scenarios.py`` holds that.

This module imports no procedure (the class is named, and imported when asked), so
everything from the procedures up to the CLI, and the fleet rules beside them, can read it.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .errors import InputError
from .topology import ECDSA_UNIT, RSA_UNIT

__all__ = [
    "CA_SIGNED",
    "FLEET_RUNBOOK",
    "PREFLIGHT",
    "RENEW_TOMCAT",
    "RSA_ONLY",
    "SCENARIOS",
    "SELF_SIGNED",
    "Scenario",
    "get",
    "names",
    "renewing",
    "runbook_path",
    "runbooks_dir",
]


@dataclass(frozen=True)
class Scenario:
    """One scenario: its runbook, its procedure and the facts the rest of cckit asks about."""

    name: str
    #: one line for people (CLI help)
    title: str
    #: ``module:Class`` of its procedure, imported by :meth:`procedure_class`
    procedure: str
    #: never changes a node: no confirmation, never resumed, "apply" means nothing
    read_only: bool = False
    #: takes a CA adapter (the ``ca`` and ``ca_options`` parameters)
    uses_ca: bool = False
    #: a real site's changes need the ``confirm`` parameter (a batch gives the site's name)
    takes_confirm: bool = False
    #: the release the embedded mock plays for it (None: the mock's own, UCCX 11.5)
    embedded_version: str | None = None
    #: the TLS clients whose view of the web ports its before/after and summary show: a
    #: browser (offers RSA and ECDSA; the server chooses), ECDSA-only, RSA-only
    clients: tuple[str, ...] = ("browser", "ecdsa", "rsa")
    #: the parameters preflight's advice gives it besides the site (None: never advised)
    advice: Mapping[str, str] | None = None
    #: the certificate unit it (re)issues: the runbook an inventory finding about it names
    renews: str | None = None
    #: its parameters in ``cckit demo`` (None: not in the demo)
    demo: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in ("advice", "demo"):  # a shared default must not be mutated by a caller
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, MappingProxyType(dict(value)))

    @property
    def notebook(self) -> Path:
        """Its runbook (``runbooks/<name>.ipynb``, or the copy an installed wheel ships)."""
        return runbook_path(self.name)

    def procedure_class(self) -> type:
        module, _, cls = self.procedure.partition(":")
        return getattr(importlib.import_module(module), cls)

    def parameters(self) -> dict[str, dict[str, Any]]:
        """Its notebook's parameters cell (papermill's reading: name, default, type),
        read once per process."""
        path = self.notebook
        return dict(_parameters(path, path.stat().st_mtime_ns))


PREFLIGHT = Scenario(
    "preflight", "read-only checks: versions, COPs, certificates, what each port presents; "
    "which scenario to run", "cckit.procedures.preflight:Preflight", read_only=True, demo={})
CA_SIGNED = Scenario(
    "ca_signed", "CA-signed tomcat-ECDSA on UCCX 11.5 and SocialMiner",
    "cckit.procedures.ca_signed:CaSigned", uses_ca=True, takes_confirm=True,
    advice={"ca": "files"}, renews=ECDSA_UNIT, demo={})
SELF_SIGNED = Scenario(
    "self_signed", "self-signed tomcat-ECDSA: the agent-PC trust bundle (no server change)",
    "cckit.procedures.self_signed:SelfSigned", read_only=True, advice={}, demo={})
RSA_ONLY = Scenario(
    "rsa_only", "RSA only: the COP that stops tomcat-ECDSA being offered, or its rollback",
    "cckit.procedures.rsa_only:RsaOnly", takes_confirm=True, advice={"action": "disable"},
    demo={"action": "disable"})
# UCCX 11.6+ has no tomcat-ECDSA (Cisco 118855): renew_tomcat changes what an RSA client (and
# so a browser) is shown; an ECDSA client's view would only be empty
RENEW_TOMCAT = Scenario(
    "renew_tomcat", "renew the RSA tomcat certificate on UCCX 11.6+, SocialMiner and CCP",
    "cckit.procedures.renew_tomcat:RenewTomcat", uses_ca=True, takes_confirm=True,
    embedded_version="12.5.1.10000-22", clients=("browser", "rsa"),
    advice={"ca": "files"}, renews=RSA_UNIT)

#: every scenario by name, in the order people meet them
SCENARIOS: Mapping[str, Scenario] = MappingProxyType(
    {s.name: s for s in (PREFLIGHT, CA_SIGNED, SELF_SIGNED, RSA_ONLY, RENEW_TOMCAT)})
#: the fleet inventory's runbook: a read-only sweep of many sites, not a scenario of one
FLEET_RUNBOOK = "inventory"


def names() -> tuple[str, ...]:
    return tuple(SCENARIOS)


def get(name: str) -> Scenario:
    """The scenario called ``name``; the one error for an unknown name."""
    try:
        return SCENARIOS[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown scenario {name!r}",
                         hint=f"use one of {', '.join(SCENARIOS)}") from None


def renewing(unit: str) -> Scenario | None:
    """The scenario that renews certificate ``unit`` (None: no cckit runbook does)."""
    return next((s for s in SCENARIOS.values() if s.renews == unit), None)


def runbooks_dir() -> Path:
    """Where the runbook notebooks are: ``CCKIT_RUNBOOKS`` if set; else, when cckit runs from
    a source checkout (an editable install), the checkout's ``runbooks/``, so an edited
    notebook counts; else the copy an installed wheel ships as ``cckit/_runbooks/`` (copied
    from ``runbooks/`` at build time, see setup.py)."""
    env = os.environ.get("CCKIT_RUNBOOKS")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "runbooks").is_dir():
        return checkout / "runbooks"
    return Path(str(resources.files(__package__) / "_runbooks"))


def runbook_path(name: str) -> Path:
    """The notebook of scenario ``name`` (or of the fleet inventory)."""
    if name != FLEET_RUNBOOK:
        get(name)
    path = runbooks_dir() / f"{name}.ipynb"
    if not path.exists():
        raise InputError(f"runbook {path} not found",
                         hint="set CCKIT_RUNBOOKS to the folder holding the .ipynb files")
    return path


@functools.cache
def _parameters(notebook: Path, mtime_ns: int) -> Mapping[str, dict[str, Any]]:
    import papermill

    return MappingProxyType(dict(papermill.inspect_notebook(str(notebook))))
