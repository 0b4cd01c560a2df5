"""The journey-summary ("wide") path: what gradient boosting on summaries sees, as tensors.

:class:`JourneySummary` turns a padded batch into one fixed-width vector per journey:
touch counts per channel and per campaign type, first and last channel, time from each
channel's latest touch to the journey's end, the length before and after truncation,
the duration, the last, mean, shortest and longest gap, how many channels the journey
mixes, and the hour and weekday of its last touch. It is computed inside the net from
the same tensors the recurrent path reads, so any journey the net can score (a deleted
unit's, a held-out file's) gets its summary the same way.

Quickstart
----------
>>> import torch
>>> from journeynet.model.features import N_TOUCH_FEATURES
>>> s = JourneySummary(n_channels=5, n_campaigns=3)
>>> channel = torch.tensor([[2, 2, 3], [4, 0, 0]])
>>> x = s(channel, torch.ones_like(channel), torch.zeros(2, 3, N_TOUCH_FEATURES),
...       torch.tensor([3, 1]), torch.tensor([3, 1]))
>>> x.shape == (2, s.out_dim), round(float(x[0, 2].exp() - 1))  # two touches of channel 2
(True, 2)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from journeynet.model.features import (
    GAP_PREV,
    HOUR_COS,
    HOUR_SIN,
    TO_END,
    WEEKDAY_COS,
    WEEKDAY_SIN,
)

#: Recency given to a channel the journey never touched (beyond any real log1p-minute value).
ABSENT_RECENCY = 3.0
_N_SCALARS = 13


class JourneySummary(nn.Module):
    """Fixed-width journey summary from a padded batch (no parameters).

    Parameters
    ----------
    n_channels, n_campaigns : int
        Vocabulary sizes, reserved ids included.
    """

    def __init__(self, n_channels: int, n_campaigns: int) -> None:
        super().__init__()
        self.n_channels, self.n_campaigns = n_channels, n_campaigns
        self.out_dim = 4 * n_channels + n_campaigns + _N_SCALARS

    def forward(self, channel: Tensor, campaign: Tensor, feats: Tensor, lengths: Tensor,
                full_length: Tensor) -> Tensor:
        """Summarize each journey.

        Parameters
        ----------
        channel, campaign : Tensor
            Long ids, shape (B, T), 0 on padding.
        feats : Tensor
            Per-touch features (:data:`~journeynet.model.features.TOUCH_FEATURES`), (B, T, F).
        lengths, full_length : Tensor
            Real touches in the batch and before truncation, shape (B,).

        Returns
        -------
        Tensor
            float32, shape (B, out_dim).
        """
        B, T = channel.shape
        lengths = lengths.to(channel.device)
        steps = torch.arange(T, device=channel.device)
        mask = steps[None, :] < lengths[:, None]  # (B, T)
        fmask = mask.float()
        feats = feats.float()
        onehot = F.one_hot(channel, self.n_channels).float() * fmask[..., None]  # (B, T, C)
        counts = onehot.sum(1)  # (B, C)
        camp_counts = (F.one_hot(campaign, self.n_campaigns).float() * fmask[..., None]).sum(1)  # (B, K)
        rows = torch.arange(B, device=channel.device)
        last_idx = lengths - 1  # (B,)
        first_ch, last_ch = onehot[:, 0], onehot[rows, last_idx]  # (B, C)
        to_end = feats[..., TO_END]  # (B, T)
        recency = torch.where(onehot > 0, to_end[..., None], torch.full_like(onehot, ABSENT_RECENCY))
        recency = recency.amin(1)  # (B, C): time from the channel's latest touch to the end
        gap = feats[..., GAP_PREV]  # (B, T)
        has_gap = mask & (steps[None, :] > 0)  # (B, T): the first touch has no gap before it
        n_gaps = has_gap.sum(1).clamp(min=1).float()  # (B,)
        any_gap = has_gap.any(1)
        mean_gap = (gap * has_gap).sum(1) / n_gaps
        min_gap = torch.where(has_gap, gap, torch.full_like(gap, float("inf"))).amin(1)
        max_gap = torch.where(has_gap, gap, torch.zeros_like(gap)).amax(1)
        last = feats[rows, last_idx]  # (B, F)
        n_len, n_full = lengths.float(), full_length.to(channel.device).float()
        scalars = torch.stack([
            torch.log1p(n_full), torch.log1p(n_len), torch.log1p(n_full - n_len),
            to_end[:, 0], gap[rows, last_idx], mean_gap,
            torch.where(any_gap, min_gap, torch.zeros_like(min_gap)), max_gap,
            (counts > 0).float().sum(1) / self.n_channels,
            last[:, HOUR_SIN], last[:, HOUR_COS], last[:, WEEKDAY_SIN], last[:, WEEKDAY_COS],
        ], dim=1)  # (B, 13)
        return torch.cat([torch.log1p(counts), torch.log1p(camp_counts), first_ch, last_ch,
                          recency, scalars], dim=1)


class PeriodicEmbedding(nn.Module):
    """Each summary number as ``ReLU(W_i [sin(2 pi c_i x_i), cos(2 pi c_i x_i)])``.

    A plain MLP bends slowly around a sharp threshold (a gap under a minute, exactly three
    touches) that trees cut at once; learned frequencies per feature give it those edges
    (Gorishniy et al., "On Embeddings for Numerical Features in Tabular Deep Learning", 2022).

    Parameters
    ----------
    n_features : int
        Summary width.
    n_frequencies : int
        Learned frequencies per feature.
    dim : int
        Output size per feature.
    sigma : float
        Standard deviation of the initial frequencies.
    """

    def __init__(self, n_features: int, n_frequencies: int = 8, dim: int = 8, sigma: float = 1.0) -> None:
        super().__init__()
        self.freq = nn.Parameter(torch.randn(n_features, n_frequencies) * sigma)  # (S, K)
        self.weight = nn.Parameter(torch.randn(n_features, 2 * n_frequencies, dim) / (2 * n_frequencies) ** 0.5)
        self.bias = nn.Parameter(torch.zeros(n_features, dim))
        self.out_dim = n_features * dim

    def forward(self, x: Tensor) -> Tensor:
        """Embed ``x`` (B, S) as (B, S * dim)."""
        angle = 2 * torch.pi * x[..., None] * self.freq  # (B, S, K)
        z = torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)  # (B, S, 2K)
        out = torch.relu(torch.einsum("bsk,skd->bsd", z, self.weight) + self.bias)  # (B, S, dim)
        return out.flatten(1)
