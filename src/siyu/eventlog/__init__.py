"""The durable event log: every domain event appended with its change, read by named consumers.

See the explanation page "The event log" for the guarantees.
"""

from .codec import cloud_type, register_event_class
from .consumers import DEFAULT_MAX_ATTEMPTS, Consumer
from .models import ConsumerStatus, LoggedEvent
from .service import DELIVERY_MODES, EventLog

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DELIVERY_MODES",
    "Consumer",
    "ConsumerStatus",
    "EventLog",
    "LoggedEvent",
    "cloud_type",
    "register_event_class",
]
