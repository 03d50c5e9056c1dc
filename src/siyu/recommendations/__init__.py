"""``ws.recommendations``: products bought or viewed together, and personal picks.

- :mod:`.interactions`: who bought or viewed which product, caught up beside the analytics facts;
- :mod:`.model`: decayed co-occurrence with a popularity correction (NumPy);
- :mod:`.catalog`: the products as columns (active, category, exclusive tiers);
- :mod:`.ranking`: scores, business rules and reasons;
- :mod:`.service`: :class:`Recommendations`, what the workspace exposes.
"""

from .models import CartSuggestion, Evaluation, Reason, ReasonKind, Recommendation
from .service import Recommendations

__all__ = ["CartSuggestion", "Evaluation", "Reason", "ReasonKind", "Recommendation", "Recommendations"]
