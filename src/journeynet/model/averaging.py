"""An exponential moving average of the weights, validated, checkpointed and kept.

On noisy real journeys (validation AUC moving by 0.005 from one epoch to the next at the
peak learning rate) the weights of any single step are a noisy draw; their moving average
over the last few hundred steps gives a smooth validation curve for checkpoint selection and
early stopping, and a slightly lower log-loss at about the same AUC. Lightning's
:class:`~pytorch_lightning.callbacks.WeightAveraging` does the bookkeeping: validation runs
on the averaged weights, so checkpoint selection and early stopping judge them, and a
checkpoint's ``state_dict`` holds them (the raw weights ride along for resuming), so
:meth:`~journeynet.model.module.JourneyModule.load`, calibration, attribution and
prediction all read the averaged net.

Quickstart
----------
>>> from journeynet.model.averaging import ExponentialWeightAverage
>>> ExponentialWeightAverage(decay=0.99).decay
0.99
"""

from __future__ import annotations

from pytorch_lightning.callbacks import WeightAveraging
from torch.optim.swa_utils import get_ema_multi_avg_fn


class ExponentialWeightAverage(WeightAveraging):
    """Keep ``avg = decay * avg + (1 - decay) * weights`` after every optimizer step.

    Parameters
    ----------
    decay : float
        Weight of the running average per step, in (0, 1); ``1 / (1 - decay)`` steps is
        its horizon (0.995: about 200 steps).
    """

    def __init__(self, decay: float = 0.995) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        super().__init__(multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.decay = decay
