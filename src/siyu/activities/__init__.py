"""Activities that make a shop lively without overselling or misleading anyone.

- :mod:`~siyu.activities.flash_sales`: 秒杀 / 限量抢购 (``ws.flash_sales``)
- :mod:`~siyu.activities.bargains`: 砍价 (``ws.bargains``)
- :mod:`~siyu.activities.draws`: 抽奖 / 盲盒 (``ws.draws``)
- :mod:`~siyu.activities.fairness`: randomness anyone can re-compute (commit, HMAC, reveal)
- :mod:`~siyu.activities.report`: one report row per activity (``ws.activities.report()``)

Each is a service built in the workspace's composition root; they keep their
own tables (``siyu.storage.contracts.activities``) and sell through
``ws.orders`` like any other order.
"""

from .bargains import ENTRY_POINTS, Bargains
from .draws import Draws
from .flash_sales import CLEARANCE_REASONS, FlashSales
from .report import ActivityReport, ActivityReports

__all__ = [
    "CLEARANCE_REASONS",
    "ENTRY_POINTS",
    "ActivityReport",
    "ActivityReports",
    "Bargains",
    "Draws",
    "FlashSales",
]
