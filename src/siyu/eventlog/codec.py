"""Events to and from their stored form, at the edge of the log.

An event class from :mod:`siyu.events` is stored as its class name, a schema
version, the instant it happened and a JSON payload of its other fields. The
payload is built by one cattrs converter, so nested records (order lines,
group-buy refunds), tuples and datetimes take the same path everywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import cache
from json.encoder import encode_basestring
from typing import Any, cast

import attrs
import cattrs

from .. import events as events_module
from .._convert import converter
from .._text import ERASED
from ..events import Event

__all__ = [
    "PERSONAL_FIELDS",
    "cloud_type",
    "decode",
    "encode",
    "event_class",
    "redact",
    "schema_version",
    "subject_of",
    "type_names",
]

#: Fields whose text a caller chose freely, so it may name or describe a person:
#: replaced on erasure (ids, amounts and times stay, like the ledgers they mirror).
PERSONAL_FIELDS = frozenset({"by", "key", "ref", "reason", "reasons", "source", "channel_state"})
#: Fields naming the person an event is about, in order of preference.
_SUBJECT_FIELDS = ("user_id", "invitee_id", "keep_id", "distributor_id", "leader_id")

_converter = converter
# Built once: json.dumps with arguments builds a new encoder on every call.
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@cache
def _classes() -> dict[str, type[Event]]:
    found: dict[str, type[Event]] = {}
    for name in dir(events_module):
        value = getattr(events_module, name)
        if isinstance(value, type) and issubclass(value, Event) and value is not Event:
            found[value.__name__] = value
    return found


def register_event_class(cls: type[Event]) -> None:
    """Make a plugin's own event class (a subclass of ``Event``) storable by name."""
    if not (isinstance(cls, type) and issubclass(cls, Event)) or not attrs.has(cls):
        raise TypeError(f"{cls!r} is not an attrs subclass of siyu.events.Event")
    _classes()[cls.__name__] = cast("type[Event]", cls)


def event_class(name: str) -> type[Event] | None:
    """The event class stored under ``name``, or ``None`` if this siyu does not know it."""
    return _classes().get(name)


def type_names(types: Iterable[object] | None) -> list[str] | None:
    """Class names from classes or names (``None`` passes through: every type)."""
    if types is None:
        return None
    names: list[str] = []
    for item in [types] if isinstance(types, str | type) else types:
        if isinstance(item, type) and issubclass(item, Event):
            names.append(item.__name__)
        elif isinstance(item, str) and item:
            names.append(item)
        else:
            raise TypeError(f"event types are classes from siyu.events or their names, got {item!r}")
    return names


def schema_version(cls: type[Event]) -> int:
    """The payload version of an event class (``schema_version`` class attribute, default 1)."""
    return int(getattr(cls, "schema_version", 1))


def subject_of(event: Event) -> int | None:
    """The id of the person the event is about, if it names one."""
    for name in _SUBJECT_FIELDS:
        value = getattr(event, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def subject_field(cls: type[Event]) -> str | None:
    """The field of an event class that names the person it is about (``user_id`` first)."""
    names = {f.name for f in attrs.fields(cls)}
    return next((name for name in _SUBJECT_FIELDS if name in names), None)


def encode(event: Event) -> str:
    """The event's fields except ``at`` as compact JSON (the converter's output, with no spaces)."""
    return encoder(type(event))(event)


def encoder(cls: type[Event]) -> Callable[[Event], str]:
    """:func:`encode` for events of ``cls`` (looked up once for a run of them)."""
    found = _encoders.get(cls)
    if found is None:
        found = _encoders[cls] = _make_encoder(cls)
    return found


#: A generated encoder per event class. A bulk write logs thousands of events, and building a
#: dict for ``json`` costs ten times what one ``%`` format of the fields does.
_encoders: dict[type, Callable[[Event], str]] = {}


def _make_encoder(cls: type[Event]) -> Callable[[Event], str]:
    attrs.resolve_types(cls)
    parts: list[str] = []
    values: list[str] = []
    namespace: dict[str, Any] = {"_str": encode_basestring, "_other": _other}
    for index, field in enumerate(attrs.fields(cls)):
        if field.name == "at":
            continue
        key = encode_basestring(field.name).replace("%", "%%")
        if field.type is int:
            parts.append(f"{key}:%d")
            values.append(f"e.{field.name}")
        elif field.type is str:
            parts.append(f"{key}:%s")
            values.append(f"_str(e.{field.name})")
        else:  # optional, nested, tuples, datetimes: through the converter
            namespace[f"_t{index}"] = field.type
            parts.append(f"{key}:%s")
            values.append(f"_other(e.{field.name}, _t{index})")
    template = "{" + ",".join(parts) + "}"
    source = f"def encode(e):\n    return {template!r} % ({', '.join(values)},)\n"
    exec(compile(source, f"<siyu event encoder {cls.__name__}>", "exec"), namespace)
    encoder: Callable[[Event], str] = namespace["encode"]
    return encoder


def _other(value: Any, type_: Any) -> str:
    return _dumps(_converter.unstructure(value, type_))


def decode(name: str, at: datetime, payload: str | Mapping[str, Any]) -> Event | None:
    """Rebuild an event; ``None`` for a class this siyu does not know."""
    cls = event_class(name)
    if cls is None:
        return None
    data = dict(json.loads(payload) if isinstance(payload, str) else payload)
    data["at"] = at.isoformat()
    try:
        return _converter.structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError):
        return None


def redact(payload: str) -> str:
    """The payload with its free-text fields replaced (see :data:`PERSONAL_FIELDS`)."""
    data = json.loads(payload)
    for name in PERSONAL_FIELDS & set(data):
        value = data[name]
        if isinstance(value, str):
            data[name] = ERASED
        elif isinstance(value, list):
            data[name] = [ERASED for _ in value]
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


_WORDS = re.compile(r"[A-Z][a-z0-9]*")


@cache
def cloud_type(name: str) -> str:
    """The CloudEvents ``type`` of an event class: ``OrderRecorded`` -> ``siyu.order.recorded``,
    ``GroupBuyCompleted`` -> ``siyu.group_buy.completed`` (the last word is the verb)."""
    words = [w.lower() for w in _WORDS.findall(name)] or [name.lower()]
    if len(words) == 1:
        return f"siyu.{words[0]}"
    return f"siyu.{'_'.join(words[:-1])}.{words[-1]}"
