"""Each scenario as named, idempotent steps over a :class:`SiteSession`.

``preflight`` (read-only inventory and advisor), ``ca_signed``, ``self_signed`` and
``rsa_only`` (``disable`` or ``rollback``). Every procedure has a ``plan`` that lists the exact
commands it would send and changes nothing.
"""

from ._common import Plan, SiteSession, StepResult

#: the scenarios, one runbook each (runbooks/<name>.ipynb)
SCENARIOS = ("preflight", "ca_signed", "self_signed", "rsa_only")

__all__ = ["SCENARIOS", "Plan", "SiteSession", "StepResult"]
