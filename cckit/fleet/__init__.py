"""The fleet certificate inventory: a read-only sweep of many sites, its findings (each with
a severity and the runbook that fixes it), alerts on new findings, and the files a team
watches (CSV/Parquet, an HTML dashboard, a Prometheus textfile). ``cckit inventory`` and
``runbooks/inventory.ipynb`` call :func:`run_sweep`; docs/inventory.md says how to schedule it.
"""

from ..notify import Notifier, parse_notifier
from .records import CertRow, Code, CsrRow, Finding, NodeRow, PortRow, Severity, SiteInventory
from .rules import Policy
from .sweep import Sweep, run_sweep, site_files

__all__ = [
    "CertRow",
    "Code",
    "CsrRow",
    "Finding",
    "NodeRow",
    "Notifier",
    "Policy",
    "PortRow",
    "Severity",
    "SiteInventory",
    "Sweep",
    "parse_notifier",
    "run_sweep",
    "site_files",
]
