"""What a conversion is worth per paid unit: the value ``budget.objective=revenue`` maximizes.

Quickstart
----------
>>> import pandas as pd
>>> from journeynet.planning.revenue import revenue_per_conversion
>>> tp = pd.DataFrame({"customer_id": [1, 1], "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"]),
...                    "channel": ["google_ads", "direct"], "campaign_type": ["search", ""],
...                    "converted": [0, 1], "revenue": [0.0, 80.0]})
>>> revenue_per_conversion(tp, {("google_ads", "search")})
{('google_ads', 'search'): 80.0}
"""

from __future__ import annotations

import pandas as pd

from journeynet.data.touchsource import TouchSource, as_source

Unit = tuple[str, str]


def revenue_per_conversion(touchpoints: pd.DataFrame | TouchSource, units: list[Unit] | set[Unit],
                           prior_weight: float = 10.0) -> dict[Unit, float] | None:
    """Mean revenue of the conversions each unit touched beforehand (the same customer), per unit.

    A unit with few such conversions is shrunk toward the mean revenue of all conversions
    (``prior_weight`` pseudo-conversions), so one large order does not decide a plan.
    ``touchpoints``: canonical rows, or a :class:`~journeynet.data.touchsource.TouchSource`
    (a streamed lake); sums run over conversions in a canonical order, so both give the same.

    Returns
    -------
    dict or None
        Unit -> revenue per conversion; None when the touchpoints carry no revenue.
    """
    return as_source(touchpoints).revenue_per_conversion(units, prior_weight)
