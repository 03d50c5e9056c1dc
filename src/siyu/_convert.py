"""The one converter between siyu's typed records and their stored (JSON) form.

Validation and conversion belong to the edges: a model never serializes itself,
and a service never reads a stored dict key by key. The storage layer and the
event log turn rows and JSON payloads into typed records with :data:`converter`
(``converter.structure(raw, Type)`` / ``converter.unstructure(value)``), so
datetimes, durations, tuples and nested records take the same path everywhere:
datetimes as ISO 8601 strings, durations as seconds.
"""

from __future__ import annotations

from datetime import timedelta

from cattrs.preconf.json import JsonConverter, make_converter

__all__ = ["converter"]


def _make() -> JsonConverter:
    made = make_converter()
    made.register_unstructure_hook(timedelta, lambda value: value.total_seconds())
    made.register_structure_hook(timedelta, lambda value, _: timedelta(seconds=value))
    return made


#: The converter of every stored JSON record (campaign configs, event payloads).
converter = _make()
