"""Template variables computed per user by another domain (``${rec_1_title}``).

Most template variables are user attributes or campaign data. A
:class:`VariableSource` computes others for a batch of users at send time:
the workspace gives ``ws.campaigns`` ``ws.recommendations``' source, which answers
``rec_<n>_sku`` and ``rec_<n>_title`` with each user's own ``n``-th pick. A
user a source has no value for is skipped at send with reason
``missing_variable``, like a missing attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ..storage.base import Transaction

__all__ = ["UserVariables", "VariableSource"]

Values = Callable[["Transaction", Sequence[int], Sequence[str]], Mapping[int, Mapping[str, str]]]


@attrs.frozen(kw_only=True)
class VariableSource:
    """``provides(name)``: whether the source answers a variable; ``values(tx, users, names)``:
    ``{user_id: {name: value}}`` for the users it has values for."""

    provides: Callable[[str], bool]
    values: Values


class UserVariables:
    """The registered sources, asked in registration order."""

    def __init__(self, sources: Sequence[VariableSource] = ()) -> None:
        self._sources = list(sources)

    def provides(self, name: str) -> bool:
        return any(s.provides(name) for s in self._sources)

    def fill(self, tx: Transaction, users: Sequence[int], names: Sequence[str],
             attributes: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """``attributes`` with the computed variables among ``names`` added per user."""
        for source in self._sources:
            wanted = [n for n in names if source.provides(n)]
            if not wanted or not users:
                continue
            for uid, values in source.values(tx, users, wanted).items():
                attributes.setdefault(uid, {}).update(values)
        return attributes
