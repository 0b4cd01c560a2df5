"""Attention-LSTM conversion model over customer journeys (plain PyTorch).

A journey is a time-ordered sequence of touches. Each touch carries a channel id, a
campaign-type id and three float features (see :data:`N_TOUCH_FEATURES`). The network
reads the journey with an LSTM, pools the hidden states with additive (Bahdanau)
attention under an explicit padding mask, and predicts the conversion logit from the
attention context, the last real hidden state and the log journey length.

``forward`` returns named outputs so attribution can read the attention without hooks.
:func:`collate_journeys` turns flat Journeys arrays into the padded tensors ``forward``
takes; it lives here, beside the net's input contract, so inference needs no Lightning.

Quickstart
----------
>>> import torch
>>> from journeynet.model.net import AttentionLSTM
>>> net = AttentionLSTM(n_channels=6, n_campaigns=4, hidden_size=8)
>>> channel = torch.tensor([[2, 3, 0], [4, 0, 0]])
>>> out = net(channel, channel.clamp(max=3), torch.zeros(2, 3, 3), torch.tensor([2, 1]))
>>> out["logits"].shape, out["attention"].shape
(torch.Size([2]), torch.Size([2, 3]))
>>> float(out["attention"][1, 1:].detach().abs().sum())
0.0
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

log = logging.getLogger(__name__)

#: Per-touch float features: log_dt_prev, log_dt_end, log1p(position).
N_TOUCH_FEATURES = 3


def journey_lengths(journeys: Any) -> np.ndarray:
    """Touches per journey, from ``journeys.offsets``.

    Parameters
    ----------
    journeys : Journeys
        Any object with an ``offsets`` array of length n_journeys + 1.

    Returns
    -------
    np.ndarray
        int64 lengths, shape (n_journeys,).
    """
    return np.diff(np.asarray(journeys.offsets, dtype=np.int64))


def touch_features(journeys: Any) -> np.ndarray:
    """Per-touch float features: log_dt_prev, log_dt_end, log1p(position).

    Parameters
    ----------
    journeys : Journeys
        Journeys with per-touch ``log_dt_prev``, ``log_dt_end`` and ``position``.

    Returns
    -------
    np.ndarray
        float32 array, shape (n_touch, 3).
    """
    # log1p keeps position on the same scale as the log time gaps whatever max_len is.
    pos = np.log1p(np.asarray(journeys.position, dtype=np.float32))
    feats = np.stack([journeys.log_dt_prev, journeys.log_dt_end, pos], axis=1)
    assert feats.shape[1] == N_TOUCH_FEATURES, feats.shape
    return feats.astype(np.float32, copy=False)


def collate_journeys(
    journeys: Any, feats: np.ndarray, idx: np.ndarray, lengths: np.ndarray | None = None
) -> dict[str, torch.Tensor]:
    """Gather journeys ``idx`` into right-padded tensors.

    Parameters
    ----------
    journeys : Journeys
        Source journeys (per-touch arrays and ``offsets``; ``label`` if present).
    feats : np.ndarray
        Output of :func:`touch_features` for ``journeys``, shape (n_touch, 3).
    idx : np.ndarray
        Journey indices to gather, shape (B,).
    lengths : np.ndarray | None
        Precomputed :func:`journey_lengths`, to avoid recomputing per batch.

    Returns
    -------
    dict[str, torch.Tensor]
        ``channel``, ``campaign`` (B, T) long; ``feats`` (B, T, 3) float; ``lengths``
        (B,) long; ``index`` (B,) long journey indices; ``label`` (B,) float when known.
    """
    idx = np.asarray(idx, dtype=np.int64)
    starts = np.asarray(journeys.offsets, dtype=np.int64)[idx]  # (B,)
    lens = (journey_lengths(journeys) if lengths is None else lengths)[idx]  # (B,)
    T = int(lens.max())
    steps = np.arange(T)[None, :]  # (1, T)
    mask = steps < lens[:, None]  # (B, T)
    touch = np.where(mask, starts[:, None] + steps, 0)  # (B, T), any valid row for padding
    channel = np.where(mask, np.asarray(journeys.channel)[touch], 0)  # (B, T)
    campaign = np.where(mask, np.asarray(journeys.campaign)[touch], 0)  # (B, T)
    f = np.where(mask[..., None], feats[touch], 0.0).astype(np.float32)  # (B, T, 3)
    batch = {
        "channel": torch.from_numpy(channel.astype(np.int64)),
        "campaign": torch.from_numpy(campaign.astype(np.int64)),
        "feats": torch.from_numpy(f),
        "lengths": torch.from_numpy(lens.astype(np.int64)),
        "index": torch.from_numpy(idx),
    }
    label = getattr(journeys, "label", None)
    if label is not None:
        batch["label"] = torch.from_numpy(np.asarray(label)[idx].astype(np.float32))
    return batch


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
    """Embeddings + LSTM + additive attention + MLP head -> conversion logit.

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
        LSTM hidden size per direction.
    num_layers : int
        Stacked LSTM layers.
    dropout : float
        Dropout on embeddings, between LSTM layers and in the head.
    bidirectional : bool
        Read the journey both ways. Off by default: attribution reads time order.
    attention_dim : int
        Size of the attention projection.
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
    ) -> None:
        super().__init__()
        for name, value in (("n_channels", n_channels), ("n_campaigns", n_campaigns)):
            if value < 2:
                raise ValueError(f"{name} must be >= 2 (ids 0 and 1 are <pad>, <unk>), got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        #: Constructor arguments, saved in checkpoints so the net can be rebuilt.
        self.config: dict[str, Any] = dict(
            n_channels=n_channels, n_campaigns=n_campaigns, channel_dim=channel_dim,
            campaign_dim=campaign_dim, hidden_size=hidden_size, num_layers=num_layers,
            dropout=dropout, bidirectional=bidirectional, attention_dim=attention_dim,
        )
        self.channel_emb = nn.Embedding(n_channels, channel_dim, padding_idx=0)
        self.campaign_emb = nn.Embedding(n_campaigns, campaign_dim, padding_idx=0)
        self.in_drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            channel_dim + campaign_dim + N_TOUCH_FEATURES, hidden_size, num_layers=num_layers,
            batch_first=True, bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,  # torch warns on dropout with 1 layer
        )
        state_dim = hidden_size * (2 if bidirectional else 1)
        self.attention = AdditiveAttention(state_dim, attention_dim)
        self.head = nn.Sequential(
            nn.Linear(2 * state_dim + 1, hidden_size),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, 1),
        )

    def forward(
        self, channel: Tensor, campaign: Tensor, feats: Tensor, lengths: Tensor
    ) -> dict[str, Tensor]:
        """Score a padded batch of journeys.

        Parameters
        ----------
        channel, campaign : Tensor
            Long ids, shape (B, T), 0 on padding.
        feats : Tensor
            Float per-touch features, shape (B, T, 3).
        lengths : Tensor
            Real touches per journey, shape (B,), each in [1, T].

        Returns
        -------
        dict[str, Tensor]
            ``logits`` (B,) and ``attention`` (B, T).
        """
        B, T = channel.shape
        lengths_cpu = lengths.detach().to("cpu", torch.int64)  # pack_padded_sequence wants CPU
        assert int(lengths_cpu.min()) >= 1 and int(lengths_cpu.max()) <= T, "lengths out of [1, T]"
        mask = torch.arange(T, device=channel.device)[None, :] < lengths.to(channel.device)[:, None]
        x = torch.cat(
            [self.channel_emb(channel), self.campaign_emb(campaign), feats.to(torch.float32)],
            dim=-1,
        )  # (B, T, E)
        x = self.in_drop(x)
        # Packing keeps padded steps out of the recurrence, so padding cannot change a
        # journey's states (and a bidirectional LSTM starts its backward pass at the end).
        packed = pack_padded_sequence(x, lengths_cpu, batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, D)
        n_dir = 2 if self.lstm.bidirectional else 1
        last = h_n[-n_dir:].transpose(0, 1).reshape(B, -1)  # (B, D), final real step per journey
        context, attention = self.attention(states, mask)  # (B, D), (B, T)
        log_len = torch.log(lengths.to(states.device, states.dtype)).unsqueeze(-1)  # (B, 1)
        logits = self.head(torch.cat([context, last, log_len], dim=-1)).squeeze(-1)  # (B,)
        return {"logits": logits, "attention": attention}
