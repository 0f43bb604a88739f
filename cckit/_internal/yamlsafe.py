"""YAML for input cckit does not control (site files, ``-p`` values): bounded, plain data.

``yaml.safe_load`` builds no objects but still expands aliases (a "billion laughs" file of a
few hundred bytes grows to gigabytes) and turns ``2026-01-01`` into a ``date`` that JSON
and papermill cannot store. :func:`load` refuses anchors and aliases, nesting deeper than
:data:`MAX_DEPTH` and input longer than :data:`MAX_CHARS`, and keeps dates as strings.
"""

from __future__ import annotations

from typing import Any, ClassVar

import yaml
from yaml.composer import ComposerError

__all__ = ["MAX_CHARS", "MAX_DEPTH", "load"]

#: more than any site file or parameter needs (a site file is a few kilobytes)
MAX_CHARS = 1 << 20
MAX_DEPTH = 50
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Loader(yaml.SafeLoader):
    """SafeLoader without anchors, aliases, timestamps or deep nesting."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[Any]]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise ComposerError(None, None, "anchors and aliases (&name, *name) are not "
                                "allowed: write each value out", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                    event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load(text: str) -> Any:
    """The plain data in ``text``; :class:`yaml.YAMLError` (with ``problem`` and
    ``problem_mark`` where known) for anything else."""
    if len(text) > MAX_CHARS:
        raise yaml.YAMLError(f"longer than {MAX_CHARS // 1024} KiB")
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
