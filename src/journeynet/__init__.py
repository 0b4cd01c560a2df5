"""journeynet: where the next ad dollar should go.

Reads customer journeys and daily ad spend, trains an attention-LSTM conversion
model, attributes conversions with interventions in a fitted latent-funnel model,
fits response curves and allocates a budget across paid campaigns.
"""

__version__ = "0.1.0"
