"""Activities that make a shop lively without overselling or misleading anyone.

- :mod:`~siyu.activities.flash_sales`: 秒杀 / 限量抢购 (``ws.flash_sales``)

Each is a service built in the workspace's composition root; they keep their
own tables (``siyu.storage.contracts.activities``) and sell through
``ws.orders`` like any other order.
"""

from .flash_sales import CLEARANCE_REASONS, FlashSales

__all__ = ["CLEARANCE_REASONS", "FlashSales"]
