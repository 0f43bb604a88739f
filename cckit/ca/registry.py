"""Which CA adapters there are: the built-in ones and those registered under the ``cckit.ca``
entry-point group, each found by name with its options checked against its signature.

Above the adapters (it names them), beside :mod:`cckit.ca.base` (the interface they share):
adding a CA is its :class:`~cckit.ca.base.CertificateAuthority` subclass in ``ca/`` and its
line in :func:`_builtin` (or an entry point).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from ..errors import InputError
from .base import CertificateAuthority

__all__ = ["check_options", "get_adapter"]


def _builtin() -> dict[str, type[CertificateAuthority]]:
    from .acme import AcmeCA
    from .certsrv import ADCSCA
    from .files import FilesCA
    from .lab import LabCA

    return {LabCA.name: LabCA, FilesCA.name: FilesCA, ADCSCA.name: ADCSCA, AcmeCA.name: AcmeCA}


def _adapter_class(name: str) -> type[CertificateAuthority]:
    adapters: dict[str, Any] = dict(_builtin())
    for ep in entry_points(group="cckit.ca"):
        adapters.setdefault(ep.name, ep)
    if name not in adapters:
        raise InputError(
            f"unknown CA adapter {name!r}", hint=f"use one of {', '.join(sorted(adapters))}"
        )
    cls = adapters[name]
    return cls if isinstance(cls, type) else cls.load()


def check_options(name: str, options: Mapping[str, Any], *, complete: bool = True
                  ) -> type[CertificateAuthority]:
    """The adapter class for ``name`` after checking ``options`` against its signature
    (``complete=False``: only that every option is known). Values are never shown."""
    cls = _adapter_class(name)
    sig = inspect.signature(cls)
    try:
        (sig.bind if complete else sig.bind_partial)(**options)
    except TypeError:
        known = [p for p, v in sig.parameters.items()
                 if v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)]
        unknown = sorted(set(map(str, options)) - set(known))
        missing = [p for p in known if p not in options
                   and sig.parameters[p].default is inspect.Parameter.empty]
        what = (f"unknown option {', '.join(unknown)}" if unknown
                else f"missing option {', '.join(missing)}")
        raise InputError(f"the {name} CA adapter: {what} (its options: "
                         f"{', '.join(known)})", hint="fix ca_options") from None
    return cls


def get_adapter(name: str, **options: Any) -> CertificateAuthority:
    """An adapter by name: built-in, or registered under the ``cckit.ca`` entry-point group."""
    return check_options(name, options)(**options)
