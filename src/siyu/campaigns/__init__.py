"""Campaigns: audience x channel x template x variants, behind consent,
suppression, a cross-channel contact budget, platform caps and quiet hours;
an A/B pilot with a holdout, a stated statistical decision, a roll-out, and
exactly-once delivery records. Use it as ``ws.campaigns``."""

from .gates import Gate
from .models import (
    Campaign,
    Decision,
    Delivery,
    DeliveryStatus,
    GateCount,
    Preview,
    ReceiptReport,
    Results,
    RunReport,
    SampleRender,
    Trigger,
    UnmatchedReceipt,
    VariantResult,
)
from .policy import ContactPolicy
from .service import Campaigns
from .state import TRANSITIONS, CampaignStatus

__all__ = [
    "TRANSITIONS",
    "Campaign",
    "CampaignStatus",
    "Campaigns",
    "ContactPolicy",
    "Decision",
    "Delivery",
    "DeliveryStatus",
    "Gate",
    "GateCount",
    "Preview",
    "ReceiptReport",
    "Results",
    "RunReport",
    "SampleRender",
    "Trigger",
    "UnmatchedReceipt",
    "VariantResult",
]
