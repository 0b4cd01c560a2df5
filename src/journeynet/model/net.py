"""Attention-RNN conversion model over customer journeys (plain PyTorch), wide and deep.

A journey is a time-ordered sequence of touches: channel id, campaign-type id and the
float features of :mod:`journeynet.model.features`. Two paths read it:

* the recurrent path (LSTM or GRU) reads the touches in time order and pools its hidden
  states with additive (Bahdanau) attention under an explicit padding mask;
* the summary path (:class:`~journeynet.model.summary.JourneySummary`) reads what gradient
  boosting on journey summaries sees: counts per channel, recency, gaps, length; with
  ``history=True`` also the customer's earlier journeys (:mod:`journeynet.data.history`:
  how many, how many converted, hours since the latest ended), one row per journey; with
  ``calendar=True`` also the journey's place in the data window (:mod:`journeynet.data.calendar`:
  its last touch as a fraction of the window, days from it to the data's end).

The head combines the attention context, the last real hidden state and the summary
through an MLP, plus a linear ("wide") term on the summary. ``logit_scale`` and
``logit_bias`` are calibration buffers (identity while training; fitted on validation
afterwards by :func:`journeynet.model.calibration.calibrate`).

``forward`` returns named outputs so attribution can read the attention without hooks.

Quickstart
----------
>>> import torch
>>> from journeynet.model.net import AttentionLSTM
>>> from journeynet.model.features import N_TOUCH_FEATURES
>>> net = AttentionLSTM(n_channels=6, n_campaigns=4, hidden_size=8)
>>> channel = torch.tensor([[2, 3, 0], [4, 0, 0]])
>>> feats = torch.zeros(2, 3, N_TOUCH_FEATURES)
>>> out = net(channel, channel.clamp(max=3), feats, torch.tensor([2, 1]))
>>> out["logits"].shape, out["attention"].shape
(torch.Size([2]), torch.Size([2, 3]))
>>> float(out["attention"][1, 1:].detach().abs().sum())
0.0
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from journeynet.data.calendar import N_CALENDAR
from journeynet.data.history import N_HISTORY
from journeynet.model.features import (
    HOUR_SIN,
    N_TOUCH_FEATURES,
    WEEKDAY_COS,
    collate_journeys,
    journey_lengths,
    touch_features,
)
from journeynet.model.summary import JourneySummary, PeriodicEmbedding

log = logging.getLogger(__name__)

__all__ = [
    "N_TOUCH_FEATURES", "AdditiveAttention", "AttentionLSTM", "collate_journeys",
    "journey_lengths", "touch_features",
]
_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class AdditiveAttention(nn.Module):
    """Bahdanau attention ``v^T tanh(W h)`` with a padding mask.

    Parameters
    ----------
    input_dim : int
        Size of each hidden state being attended over.
    attention_dim : int
        Size of the tanh projection.
    """

    def __init__(self, input_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(input_dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Pool ``states`` over time.

        Parameters
        ----------
        states : Tensor
            Hidden states, shape (B, T, D).
        mask : Tensor
            Bool, True on real touches, shape (B, T). Every row needs one True.

        Returns
        -------
        tuple[Tensor, Tensor]
            Context (B, D) and weights (B, T); weights sum to 1 over real touches and
            are exactly 0 on padding.
        """
        scores = self.score(torch.tanh(self.proj(states))).squeeze(-1)  # (B, T)
        # Scores are computed in float32 so -inf masking and softmax stay exact under bf16.
        scores = scores.float().masked_fill(~mask, float("-inf"))  # (B, T)
        weights = torch.softmax(scores, dim=-1)  # (B, T), exp(-inf) = 0 on padding
        context = torch.bmm(weights.unsqueeze(1).to(states.dtype), states).squeeze(1)  # (B, D)
        return context, weights


class AttentionLSTM(nn.Module):
    """Embeddings + recurrent net + additive attention, beside a journey summary -> logit.

    Parameters
    ----------
    n_channels : int
        Channel vocabulary size, including ``<pad>`` (id 0) and ``<unk>`` (id 1).
    n_campaigns : int
        Campaign-type vocabulary size, including ``<pad>`` and ``<unk>``.
    channel_dim : int
        Channel embedding size.
    campaign_dim : int
        Campaign-type embedding size.
    hidden_size : int
        Recurrent hidden size per direction (and the head's width).
    num_layers : int
        Stacked recurrent layers.
    dropout : float
        Dropout on embeddings, between recurrent layers and in the head.
    bidirectional : bool
        Read the journey both ways. Off by default: attribution reads time order.
    attention_dim : int
        Size of the attention projection.
    cell : {"lstm", "gru"}
        The recurrent cell.
    summary_dim : int
        Width of the summary path's MLP; 0 leaves the summary path out.
    recurrent : bool
        False leaves the recurrent path out of the prediction (an ablation: the head
        reads the summary alone and attention is uniform over real touches).
    periodic : bool
        Embed each summary number with learned periodic features before the MLP
        (:class:`~journeynet.model.summary.PeriodicEmbedding`); False feeds it raw.
    clock : bool
        Read the hour of day and weekday of each touch. Off by default: where conversions
        are stamped at a fixed time of day (a generated world's end-of-day conversion
        sessions) the clock gives the label away instead of the journey predicting it.
    history : bool
        The summary path also reads the customer's earlier journeys (``forward``'s
        ``history``, :data:`~journeynet.data.history.HISTORY_FEATURES`). Needs the summary
        path. Off here so checkpoints saved before it existed rebuild as they were.
    calendar : bool
        The summary path also reads the journey's place in the data window (``forward``'s
        ``calendar``, :data:`~journeynet.data.calendar.CALENDAR_FEATURES`). Needs the
        summary path. Off here so older checkpoints rebuild as they were.
    window : (int, int) | None
        The training data's window ``(start, end)`` in ns
        (:func:`~journeynet.data.calendar.calendar_window`), kept in the checkpoint so new
        journeys are placed against it (:func:`~journeynet.model.predict.predict_proba`).
    """

    def __init__(
        self,
        n_channels: int,
        n_campaigns: int,
        channel_dim: int = 16,
        campaign_dim: int = 8,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.1,
        bidirectional: bool = False,
        attention_dim: int = 32,
        cell: str = "lstm",
        summary_dim: int = 64,
        recurrent: bool = True,
        periodic: bool = True,
        clock: bool = False,
        history: bool = False,
        calendar: bool = False,
        window: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("n_channels", n_channels), ("n_campaigns", n_campaigns)):
            if value < 2:
                raise ValueError(f"{name} must be >= 2 (ids 0 and 1 are <pad>, <unk>), got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if cell not in _CELLS:
            raise ValueError(f"model.cell must be one of {sorted(_CELLS)}, got {cell!r}")
        if summary_dim < 0 or (summary_dim == 0 and not recurrent):
            raise ValueError(f"model.summary_dim must be >= 0 and > 0 when recurrent is false, "
                             f"got {summary_dim} (recurrent={recurrent})")
        if history and summary_dim == 0:
            raise ValueError("model.history=true needs the summary path it feeds: model.summary_dim must be > 0, got 0")
        if calendar and summary_dim == 0:
            raise ValueError("model.calendar=true needs the summary path it feeds: model.summary_dim must be > 0, "
                             "got 0")
        #: Constructor arguments, saved in checkpoints so the net can be rebuilt.
        self.config: dict[str, Any] = dict(
            n_channels=n_channels, n_campaigns=n_campaigns, channel_dim=channel_dim,
            campaign_dim=campaign_dim, hidden_size=hidden_size, num_layers=num_layers,
            dropout=dropout, bidirectional=bidirectional, attention_dim=attention_dim,
            cell=cell, summary_dim=summary_dim, recurrent=recurrent, periodic=periodic, clock=clock,
            history=history, calendar=calendar,
            window=None if window is None else [int(window[0]), int(window[1])],
        )
        self.channel_emb = nn.Embedding(n_channels, channel_dim, padding_idx=0)
        self.campaign_emb = nn.Embedding(n_campaigns, campaign_dim, padding_idx=0)
        self.in_drop = nn.Dropout(dropout)
        self.rnn = _CELLS[cell](
            channel_dim + campaign_dim + N_TOUCH_FEATURES, hidden_size, num_layers=num_layers,
            batch_first=True, bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,  # torch warns on dropout with 1 layer
        )
        state_dim = hidden_size * (2 if bidirectional else 1)
        self.attention = AdditiveAttention(state_dim, attention_dim)
        self.summary = JourneySummary(n_channels, n_campaigns) if summary_dim else None
        if self.summary is not None:
            # the history and the calendar join the summary
            wide_dim = self.summary.out_dim + (N_HISTORY if history else 0) + (N_CALENDAR if calendar else 0)
            embed = PeriodicEmbedding(wide_dim) if periodic else nn.Identity()
            embed_dim = embed.out_dim if periodic else wide_dim
            self.summary_mlp = nn.Sequential(
                embed, nn.Linear(embed_dim, summary_dim), nn.ReLU(),
                nn.Linear(summary_dim, summary_dim), nn.ReLU(),
            )
            self.wide = nn.Linear(wide_dim, 1)
        head_in = (2 * state_dim + 1 if recurrent else 0) + summary_dim
        self.head = nn.Sequential(
            nn.Linear(head_in, hidden_size), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_size, 1),
        )
        keep = torch.ones(N_TOUCH_FEATURES)
        if not clock:
            keep[HOUR_SIN:WEEKDAY_COS + 1] = 0.0
        self.register_buffer("feature_mask", keep, persistent=False)
        # Calibration (Platt scaling) of the logit; identity until fitted on validation.
        self.register_buffer("logit_scale", torch.ones(()))
        self.register_buffer("logit_bias", torch.zeros(()))

    @property
    def lstm(self) -> nn.Module:
        """The recurrent layer (kept under its historical name)."""
        return self.rnn

    def _recurrent(self, channel: Tensor, campaign: Tensor, feats: Tensor, lengths: Tensor,
                   mask: Tensor) -> tuple[Tensor, Tensor]:
        """Attention context plus last state (B, 2D + 1) and attention weights (B, T)."""
        B, T = channel.shape
        lengths_cpu = lengths.detach().to("cpu", torch.int64)  # pack_padded_sequence wants CPU
        x = torch.cat(
            [self.channel_emb(channel), self.campaign_emb(campaign), feats.to(torch.float32)],
            dim=-1,
        )  # (B, T, E)
        x = self.in_drop(x)
        # Packing keeps padded steps out of the recurrence, so padding cannot change a
        # journey's states (and a bidirectional net starts its backward pass at the end).
        packed = pack_padded_sequence(x, lengths_cpu, batch_first=True, enforce_sorted=False)
        out, h_n = self.rnn(packed)
        h_n = h_n[0] if isinstance(h_n, tuple) else h_n  # LSTM returns (h, c)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, D)
        n_dir = 2 if self.rnn.bidirectional else 1
        last = h_n[-n_dir:].transpose(0, 1).reshape(B, -1)  # (B, D), final real step per journey
        context, attention = self.attention(states, mask)  # (B, D), (B, T)
        log_len = torch.log(lengths.to(states.device, states.dtype)).unsqueeze(-1)  # (B, 1)
        return torch.cat([context, last, log_len], dim=-1), attention

    def forward(
        self, channel: Tensor, campaign: Tensor, feats: Tensor, lengths: Tensor,
        full_length: Tensor | None = None, history: Tensor | None = None, calendar: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Score a padded batch of journeys.

        Parameters
        ----------
        channel, campaign : Tensor
            Long ids, shape (B, T), 0 on padding.
        feats : Tensor
            Float per-touch features, shape (B, T, N_TOUCH_FEATURES).
        lengths : Tensor
            Real touches per journey, shape (B,), each in [1, T].
        full_length : Tensor | None
            Touches before ``max_len`` truncation, shape (B,); None means ``lengths``.
        history : Tensor | None
            The customer's earlier journeys, shape (B, N_HISTORY); required when the net
            was built with ``history=True``, ignored otherwise.
        calendar : Tensor | None
            The journey's place in the data window, shape (B, N_CALENDAR); required when
            the net was built with ``calendar=True``, ignored otherwise.

        Returns
        -------
        dict[str, Tensor]
            ``logits`` (B,), calibrated, and ``attention`` (B, T), summing to 1 over
            each journey's real touches and 0 on padding.
        """
        B, T = channel.shape
        lengths_cpu = lengths.detach().to("cpu", torch.int64)
        assert int(lengths_cpu.min()) >= 1 and int(lengths_cpu.max()) <= T, "lengths out of [1, T]"
        mask = torch.arange(T, device=channel.device)[None, :] < lengths.to(channel.device)[:, None]
        feats = feats.to(torch.float32) * self.feature_mask  # (B, T, F), clock columns zeroed unless read
        parts, wide = [], 0.0
        if self.config["recurrent"]:
            pooled, attention = self._recurrent(channel, campaign, feats, lengths, mask)
            parts.append(pooled)
        else:
            attention = mask.float() / mask.sum(1, keepdim=True)  # (B, T) uniform over real touches
        if self.summary is not None:
            full = lengths if full_length is None else full_length
            s = self.summary(channel, campaign, feats, lengths, full)  # (B, S)
            if self.config["history"]:
                if history is None:
                    raise ValueError("this net reads the customer history (model.history=true) but the batch has "
                                     "none: score Journeys with customer_id, journey, label and end_time")
                s = torch.cat([s, history.to(s.device, s.dtype)], dim=-1)  # (B, S + N_HISTORY)
            if self.config["calendar"]:
                if calendar is None:
                    raise ValueError("this net reads the calendar (model.calendar=true) but the batch has none: "
                                     "score Journeys with time, offsets and end_time")
                s = torch.cat([s, calendar.to(s.device, s.dtype)], dim=-1)  # (B, ... + N_CALENDAR)
            parts.append(self.summary_mlp(s))
            wide = self.wide(s).squeeze(-1)  # (B,)
        logits = self.head(torch.cat(parts, dim=-1)).squeeze(-1) + wide  # (B,)
        return {"logits": logits * self.logit_scale + self.logit_bias, "attention": attention}
