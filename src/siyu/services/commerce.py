"""The commerce services, gathered for the workspace: products, promotions,
coupons, tiers, points rules and orders (one module each)."""

from .coupons import Coupons
from .orders import Orders
from .points_rules import PointsRules
from .products import Products
from .promotions import Promotions
from .tiers import Tiers

__all__ = ["Coupons", "Orders", "PointsRules", "Products", "Promotions", "Tiers"]
