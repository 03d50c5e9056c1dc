"""Segments: a small boolean language over tags, attributes and metrics,
evaluated on Roaring bitmaps (pyroaring).

- :mod:`.ast` the tree and its canonical text, :mod:`.parser` text -> tree,
- :mod:`.index` sorted value indexes, :mod:`.metrics` the metric registry,
- :mod:`.engine` evaluation and caches, :mod:`.service` ``ws.segments``.
"""

from .ast import to_text
from .metrics import MetricValues
from .parser import parse
from .service import Segments

__all__ = ["MetricValues", "Segments", "parse", "to_text"]
