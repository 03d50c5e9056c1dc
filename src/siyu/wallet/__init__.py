"""The member wallet: what members hold besides points.

- :mod:`~siyu.wallet.stored_value` -- ``ws.wallet``: 储值 / 充值, principal and
  bonus apart, payments, refunds of unspent principal, the liability report.
- :mod:`~siyu.wallet.gift_cards` -- ``ws.gift_cards``: prepaid codes.
- :mod:`~siyu.wallet.points_mall` -- ``ws.points_mall``: 积分商城, rewards bought
  with points through the points ledger.
- :mod:`~siyu.wallet.birthdays` -- ``ws.birthdays``: a benefit once a year.
- :mod:`~siyu.wallet.member_days` -- ``ws.member_days``: 会员日 boosts and prices.
- :mod:`~siyu.wallet.reviews` -- ``ws.reviews``: rewards for reviewing and for shares that convert.
- :mod:`~siyu.wallet.presale` -- ``ws.presales``: 预售 with 定金 or 订金.
- :mod:`~siyu.wallet.rules` -- the prepaid-card rules as versioned data.
"""

from .birthdays import BirthdayBenefit, Birthdays
from .gift_cards import GiftCards
from .member_days import MemberDay, MemberDays
from .points_mall import PointsMall
from .presale import Presales
from .reviews import ReviewRewards, Reviews
from .rules import PrepaidRules
from .stored_value import Wallet, WalletSettings

__all__ = [
    "BirthdayBenefit",
    "Birthdays",
    "GiftCards",
    "MemberDay",
    "MemberDays",
    "PointsMall",
    "PrepaidRules",
    "Presales",
    "ReviewRewards",
    "Reviews",
    "Wallet",
    "WalletSettings",
]
