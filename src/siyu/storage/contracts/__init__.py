"""The storage contract, in domain terms, one module per domain.

A backend implements these abstract stores; services use nothing else. A
third party can implement them on any store that offers atomic transactions.
Instants cross this boundary as aware ``datetime``; money as integer fen.
"""

from .analytics import AnalyticsStore
from .benefits import BenefitStore, Grant, Sign
from .campaigns import CampaignRow, CampaignStore, DeliveryRow, NewDelivery, ReceiptRow
from .channels import ChannelStore, OutboxRow
from .commerce import CouponStore, GrowthEntry, OrderStats, OrderStore, ProductStore, TierStore
from .fission import FissionStore
from .lifecycle import ActivityStore, LifecycleStore, TagRuleStore
from .meta import IdempotencyStore, MetaStore
from .points import NewEntry, PointsStore
from .privacy import NewAuditEntry, PrivacyStore
from .referrals import ReferralStore
from .segments import SegmentStore
from .tags import TagStore
from .users import NewUser, UserStore
from .wallet import PointsMallStore, WalletStore

__all__ = [
    "BenefitStore",
    "Grant",
    "Sign",
    "AnalyticsStore",
    "CampaignRow",
    "CampaignStore",
    "DeliveryRow",
    "NewDelivery",
    "ReceiptRow",
    "ActivityStore",
    "LifecycleStore",
    "SegmentStore",
    "TagRuleStore",
    "ChannelStore",
    "CouponStore",
    "GrowthEntry",
    "OrderStats",
    "OrderStore",
    "ProductStore",
    "TierStore",
    "OutboxRow",
    "FissionStore",
    "IdempotencyStore",
    "MetaStore",
    "NewAuditEntry",
    "NewEntry",
    "NewUser",
    "PointsMallStore",
    "PointsStore",
    "PrivacyStore",
    "ReferralStore",
    "TagStore",
    "UserStore",
    "WalletStore",
]
