"""Each scenario as one class of named, idempotent steps over a :class:`SiteSession`.

One shape for all: ``Procedure(session, ...)``, a read-only ``plan()`` listing the exact
commands it would send, then one method per step, each returning a
:class:`~cckit.results.StepResult`. ``preflight`` (read-only checks and the advisor),
``ca_signed``, ``self_signed``, ``rsa_only`` (``disable`` or ``rollback``) and
``renew_tomcat`` (the RSA ``tomcat`` on UCCX 11.6+, SocialMiner, CCP). Which class runs
which scenario, and what else each scenario is, is declared in :mod:`cckit.scenarios`.
"""

from ..results import Plan, StepResult
from ..session import SiteSession

__all__ = ["Plan", "SiteSession", "StepResult"]
