"""The likelihood's event schedule: each sequence visited on its event days only.

Between two event days a sequence is *quiet*, and every quiet sequence takes the same
day map (no touch, no conversion, drift). The forward pass therefore never steps day by
day: the product of ``L`` consecutive day maps is assembled from products over spans
of 1, 2, 4, ... days (a table built once per evaluation, ``log2(T)`` matrix products
over all days), so any quiet stretch costs at most ``log2(T)`` small products, and the
recursion advances sequence by sequence through its *k*-th event day in lockstep
(``k = 0, 1, ...``). Python-level steps fall from the number of days to the most event
days any sequence has, and work from ``sequences x days`` to events.

Sequences are held in *schedule order*: by number of event days, most first, so the
sequences still active at step ``k`` are a prefix and no step gathers or scatters state.
Everything here is data (index tensors), computed once per :class:`FunnelData`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from journeynet.causal.data import FunnelData


@dataclass
class Span:
    """A quiet stretch per row: for each span level used, the table index of each row.

    Rows whose stretch does not use a level point at the identity entry (index ``T``).
    """

    levels: list[tuple[int, Tensor]]


@dataclass
class Step:
    """The ``k``-th event day of every sequence that has one (a prefix of ``m`` rows)."""

    m: int
    day: Tensor  # (m,) the event day of each row
    counted: Tensor  # (m,) 1.0, or 0.0 on a conversion day (only the conversion is counted then)
    p_row: Tensor
    p_unit: Tensor
    u_row: Tensor
    u_chan: Tensor
    ranks: list[tuple[Tensor, Tensor, Tensor]]  # per rank within the day: rows, units, recent exposure
    cu_row: Tensor  # conversion in a paid session
    cu_unit: Tensor
    cu_recent: Tensor
    ch_row: Tensor  # conversion in an unpaid session (the hazard)
    ch_chan: Tensor
    gap: Span  # quiet days up to the next step's day, for its rows


@dataclass
class EventSchedule:
    """Every sequence's event days in lockstep, and the quiet stretches between them."""

    order: Tensor  # (N,) sequence at each schedule position
    first_day: Tensor  # (N,) in schedule order
    steps: list[Step]
    final_rows: Tensor  # positions of non-converters observed through the last day
    final_start: Tensor  # their first day after the last event day (a backward vector from there covers the rest)
    final_other: Tensor  # positions of non-converters whose observation ends earlier
    final: Span  # the stretch of each of ``final_other``
    n_levels: int


def span_levels(n_days: int) -> int:
    """Number of span levels (1, 2, 4, ... days) that cover any stretch inside ``n_days``."""
    return max(int(n_days).bit_length(), 1)


def make_span(start: np.ndarray, length: np.ndarray, n_days: int, n_levels: int) -> Span:
    """Table indices that cover ``length`` quiet days from ``start``: largest spans first."""
    pos = start.astype(np.int64).copy()
    length = length.astype(np.int64)
    levels = []
    for j in reversed(range(n_levels)):
        bit = (length >> j) & 1
        if bit.any():
            levels.append((j, torch.as_tensor(np.where(bit == 1, pos, n_days))))
            pos = pos + (bit << j)
    return Span(levels)


def build_schedule(data: FunnelData, recent: np.ndarray) -> EventSchedule:
    """The schedule of ``data``; ``recent`` holds each paid row's recent exposure (wear-out)."""
    t, n = data.n_days, data.n_sequences
    n_levels = span_levels(t)
    conv = np.flatnonzero(data.conv_day >= 0)
    keys = np.concatenate([data.paid[:, :2], data.unpaid[:, :2], np.c_[conv, data.conv_day[conv]]])
    seq_day = np.unique(keys, axis=0) if len(keys) else np.zeros((0, 2), np.int64)  # sorted by sequence, day
    count = np.bincount(seq_day[:, 0], minlength=n)
    order = np.argsort(-count, kind="stable")  # schedule position -> sequence
    pos_of = np.empty(n, dtype=np.int64)
    pos_of[order] = np.arange(n)
    # k-th event day of each sequence, by position: sequences with more events come first
    starts = np.r_[0, np.cumsum(count)]
    k_of = np.arange(len(seq_day)) - starts[seq_day[:, 0]]
    n_steps = int(count.max()) if n else 0
    m_of = np.bincount(k_of, minlength=n_steps)  # sequences with a k-th event day: a prefix of positions
    by_step = np.lexsort((pos_of[seq_day[:, 0]], k_of))
    step_start = np.r_[0, np.cumsum(m_of)]
    step_days = lambda k: seq_day[by_step[step_start[k]:step_start[k + 1]], 1]  # noqa: E731  by position

    p_pos, p_day = pos_of[data.paid[:, 0]], data.paid[:, 1]
    u_pos = pos_of[data.unpaid[:, 0]]
    seq_day_key = seq_day[:, 0] * (t + 1) + seq_day[:, 1]  # sorted, as seq_day is

    def k_at(seq: np.ndarray, day: np.ndarray) -> np.ndarray:
        return k_of[np.searchsorted(seq_day_key, seq * (t + 1) + day)]

    k_paid, k_unpaid = k_at(data.paid[:, 0], p_day), k_at(data.unpaid[:, 0], data.unpaid[:, 1])
    route = data.conv_route[data.paid[:, 0]]
    converting = (data.conv_day[data.paid[:, 0]] == p_day) & (route == data.paid[:, 2])
    # rank of a paid touch within its sequence's day, in unit order (the order moves apply in)
    o = np.lexsort((data.paid[:, 2], p_day, data.paid[:, 0]))
    first = np.r_[True, (np.diff(data.paid[o, 0]) != 0) | (np.diff(p_day[o]) != 0)] if len(o) else np.zeros(0, bool)
    run_start = np.maximum.accumulate(np.where(first, np.arange(len(o)), 0)) if len(o) else np.zeros(0, np.int64)
    rank = np.empty(len(o), dtype=np.int64)
    rank[o] = np.arange(len(o)) - run_start
    conv_pos = pos_of[conv]
    conv_k = k_at(conv, data.conv_day[conv])

    paid_at, unpaid_at = _rows_by_step(k_paid, n_steps), _rows_by_step(k_unpaid, n_steps)
    conv_at = _rows_by_step(conv_k, n_steps)
    movable = (data.paid[:, 3] == 1) & ~converting
    long = lambda x: torch.as_tensor(np.asarray(x, dtype=np.int64))  # noqa: E731
    steps = []
    last = np.zeros(n, dtype=np.int64)  # last event day, by position
    for k in range(n_steps):
        m = int(m_of[k])
        day = step_days(k)
        last[:m] = day
        counted = np.ones(m)
        counted[conv_pos[conv_at[k]]] = 0.0
        pk, uk = paid_at[k], unpaid_at[k]
        ranks = []
        for r in range(int(rank[pk].max()) + 1 if pk.size else 0):
            sel = pk[(rank[pk] == r) & movable[pk]]
            ranks.append((long(p_pos[sel]), long(data.paid[sel, 2]), torch.as_tensor(recent[sel], dtype=torch.float64)))
        cu = pk[converting[pk]]
        hz = conv[conv_at[k]]
        hz = hz[data.conv_route[hz] < 0]
        if k + 1 < n_steps:
            m_next = int(m_of[k + 1])
            gap = make_span(day[:m_next] + 1, step_days(k + 1) - day[:m_next] - 1, t, n_levels)
        else:
            gap = Span([])
        steps.append(Step(m=m, day=long(day), counted=torch.as_tensor(counted, dtype=torch.float64),
                          p_row=long(p_pos[pk]), p_unit=long(data.paid[pk, 2]),
                          u_row=long(u_pos[uk]), u_chan=long(data.unpaid[uk, 2]), ranks=ranks,
                          cu_row=long(p_pos[cu]), cu_unit=long(data.paid[cu, 2]),
                          cu_recent=torch.as_tensor(recent[cu], dtype=torch.float64),
                          ch_row=long(pos_of[hz]), ch_chan=long(-1 - data.conv_route[hz]), gap=gap))
    # after the last event day: non-converters are observed through their end day
    open_ = data.conv_day[order] < 0
    to_end = open_ & (data.end_day[order] == t - 1)
    other = np.flatnonzero(open_ & ~to_end)
    final = make_span(last[other] + 1, np.maximum(data.end_day[order][other] - last[other], 0), t, n_levels)
    return EventSchedule(order=long(order), first_day=long(data.first_day[order]), steps=steps,
                         final_rows=long(np.flatnonzero(to_end)), final_start=long(last[to_end] + 1),
                         final_other=long(other), final=final, n_levels=n_levels)


def _rows_by_step(k: np.ndarray, n_steps: int) -> list[np.ndarray]:
    """Row indices of each step ``0 .. n_steps - 1``, in row order (one sort, not a scan per step)."""
    order = np.argsort(k, kind="stable")
    bounds = np.searchsorted(k[order], np.arange(n_steps + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(n_steps)]
