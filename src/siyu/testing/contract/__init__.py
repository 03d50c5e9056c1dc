"""The storage contract suite: behaviour every backend must show, in domain terms.

Run it against your backend by subclassing :class:`StorageContract` in a
test module and telling it how to make a fresh, empty database URL::

    from siyu.testing.contract import StorageContract

    class TestMyBackend(StorageContract):
        plugins = [my_backend_plugin]

        def make_url(self, tmp_path):
            return "mystore://" + str(tmp_path / "db")

Every domain contributes a mixin (``UsersContract``, ``PointsContract`` ...);
``StorageContract`` inherits all of them, so a backend that passes it passes
every domain's rules. Tests that need an optional capability check
``self.capabilities`` (declared by the backend class) instead of the
backend's name.
"""

from __future__ import annotations

from .activities import ActivitiesContract
from .analytics import AnalyticsContract
from .base import ContractBase
from .campaigns import CampaignsContract
from .channels import ChannelsContract
from .commerce import CommerceContract
from .community import CommunityContract
from .event_log import EventLogContract
from .points import PointsContract
from .privacy import PrivacyContract
from .referrals import ReferralsContract
from .segments import SegmentsContract
from .staff import StaffContract
from .tags import TagsContract
from .users import UsersContract
from .wallet import WalletContract

__all__ = [
    "ActivitiesContract",
    "AnalyticsContract",
    "CampaignsContract",
    "ChannelsContract",
    "CommerceContract",
    "CommunityContract",
    "ContractBase",
    "EventLogContract",
    "PointsContract",
    "PrivacyContract",
    "ReferralsContract",
    "SegmentsContract",
    "StaffContract",
    "StorageContract",
    "TagsContract",
    "UsersContract",
    "WalletContract",
]


class StorageContract(
    ActivitiesContract,
    EventLogContract,
    AnalyticsContract,
    CampaignsContract,
    ChannelsContract,
    UsersContract,
    TagsContract,
    PointsContract,
    CommerceContract,
    ReferralsContract,
    PrivacyContract,
    SegmentsContract,
    StaffContract,
    CommunityContract,
    WalletContract,
):
    """Every domain's contract. Subclass it and implement ``make_url``."""
