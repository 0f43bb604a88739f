"""Each scenario as one class of named, idempotent steps over a :class:`SiteSession`.

One shape for all: ``Procedure(session, ...)``, a read-only ``plan()`` listing the exact
commands it would send, then one method per step, each returning a
:class:`~cckit.results.StepResult`. ``preflight`` (read-only inventory and advisor),
``ca_signed``, ``self_signed``, ``rsa_only`` (``disable`` or ``rollback``) and
``renew_tomcat`` (the RSA ``tomcat`` on UCCX 11.6+, SocialMiner, CCP).
"""

from ..results import Plan, StepResult
from ..session import SiteSession

#: the scenarios, one runbook each (runbooks/<name>.ipynb)
SCENARIOS = ("preflight", "ca_signed", "self_signed", "rsa_only", "renew_tomcat")

__all__ = ["SCENARIOS", "Plan", "SiteSession", "StepResult"]
