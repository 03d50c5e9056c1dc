"""attrs models: plain values with no I/O and no serialization."""

from .commerce import (
    Activity,
    Coupon,
    CouponTemplate,
    Order,
    OrderLine,
    Product,
    ProductRole,
    Refund,
    Tier,
    TierChange,
)
from .points import PointsEntry, PointsLot
from .tags import TagApplication, TagGroup
from .users import IDENTITY_KINDS, Consent, Identity, MergeRecord, User

__all__ = [
    "IDENTITY_KINDS",
    "Activity",
    "Consent",
    "Coupon",
    "CouponTemplate",
    "Identity",
    "MergeRecord",
    "Order",
    "OrderLine",
    "PointsEntry",
    "PointsLot",
    "Product",
    "ProductRole",
    "Refund",
    "TagApplication",
    "TagGroup",
    "Tier",
    "TierChange",
    "User",
]
