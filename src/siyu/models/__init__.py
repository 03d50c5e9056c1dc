"""attrs models: plain values with no I/O and no serialization."""

from .points import PointsEntry, PointsLot
from .tags import TagApplication, TagGroup
from .users import IDENTITY_KINDS, Consent, Identity, MergeRecord, User

__all__ = [
    "IDENTITY_KINDS",
    "Consent",
    "Identity",
    "MergeRecord",
    "PointsEntry",
    "PointsLot",
    "TagApplication",
    "TagGroup",
    "User",
]
