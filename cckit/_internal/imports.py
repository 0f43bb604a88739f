"""Process-wide import settings, applied by the ``cckit`` command and by a runbook's kernel
(``cckit.runbook``) only: a program that imports the rest of cckit keeps its modules as
they are."""

from __future__ import annotations

import sys

__all__ = ["skip_iri_format_checker"]


def skip_iri_format_checker() -> None:
    """Keep jsonschema from importing ``rfc3987_syntax`` for its ``iri`` format checker.

    That module compiles a Lark grammar when imported: about 3 CPU-seconds in every process
    that imports nbformat, papermill or nbconvert (jsonschema issues 1392 and 1428), which was
    most of a headless run's driver. jsonschema treats the module as absent (its ``iri`` and
    ``iri-reference`` formats are then not checked); no schema cckit validates uses them
    (nbformat's schemas have no ``format`` keyword). Only before jsonschema is imported: once
    it is, its format checkers are already set.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
