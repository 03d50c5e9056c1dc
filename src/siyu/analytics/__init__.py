"""Analytics and reports: ``ws.analytics``.

One module per report (``funnel``, ``cohorts``, ``repurchase``, ``aov``,
``rfm``, ``touchpoints``, ``new_vs_returning``, ``fission``), each returning
a :class:`~siyu.analytics.results.Report` with ``.rows``, ``.to_csv()``,
``.to_json()`` and a readable ``str()``. Charts live in
:mod:`siyu.analytics.charts` (matplotlib, the ``siyu[charts]`` extra).
"""

from .aov import AovReport
from .cohorts import CohortReport
from .fission import FissionReport
from .funnel import BUILTIN_STEPS, FunnelReport
from .new_vs_returning import NewVsReturningReport
from .repurchase import RepurchaseReport
from .results import Report
from .rfm import RfmReport
from .service import Analytics
from .touchpoints import TouchpointReport

__all__ = [
    "BUILTIN_STEPS",
    "Analytics",
    "AovReport",
    "CohortReport",
    "FissionReport",
    "FunnelReport",
    "NewVsReturningReport",
    "RepurchaseReport",
    "Report",
    "RfmReport",
    "TouchpointReport",
]
