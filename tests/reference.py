"""A naive float64 reference of docs/math.md sections 2-3, written loop by loop from the text (not from hscl).

Slow on purpose: one anchor and one candidate at a time, scalar tensors so that autograd gives gradients.
"""

from __future__ import annotations

import math

import torch


def tilt(beta):
    return lambda s: beta * s


def threshold(tau):
    # w = 0 if e^s >= tau else -inf
    return lambda s: (
        torch.zeros((), dtype=s.dtype) if math.exp(float(s.detach())) >= tau else torch.tensor(-math.inf, dtype=s.dtype)
    )


def _lse(values):
    return torch.logsumexp(torch.stack(values), 0)


def reference_loss(
    z,
    labels=None,
    *,
    negatives="all",
    hardening=None,  # scalar function s -> log-weight, or None
    temperature=0.5,
    positives="views",
    num_negatives=None,
    debias=0.0,
    detach_weights=False,
    normalize=True,
    reduction="mean",
    queue=None,  # (embeddings [Q, D], labels [Q] or None, ids [Q], queue_positives)
    ids=None,  # instance ids [B]; default arange(B)
):
    """Returns (loss, per_anchor [M] (0 for invalid), valid [M] list of bool)."""
    z = z.double()
    b, v, d = z.shape
    x = z.reshape(b * v, d)
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    m = b * v
    sample_ids = list(range(b)) if ids is None else [int(i) for i in ids]
    u = [sample_ids[i // v] for i in range(m)]
    y = [int(labels[i // v]) for i in range(m)] if labels is not None else [None] * m
    refs = [x[j] for j in range(m)]
    ref_u, ref_y, can_be_pos = list(u), list(y), [True] * m
    if queue is not None:
        qz, qy, qu, qpos = queue
        for j in range(qz.shape[0]):
            refs.append(qz[j].double())
            ref_u.append(int(qu[j]))
            ref_y.append(None if qy is None else int(qy[j]))
            can_be_pos.append(qpos)
    queued = 0 if queue is None else queue[0].shape[0]
    k = num_negatives if num_negatives is not None else max(m - v + queued, 1)
    t = temperature

    per_anchor, valid, pair_losses = [], [], []
    for i in range(m):
        s = [torch.dot(x[i], r) / t for r in refs]
        if positives == "views":
            pos = [j for j in range(len(refs)) if j != i and ref_u[j] == u[i] and can_be_pos[j]]
        else:
            pos = [j for j in range(len(refs)) if j != i and ref_y[j] == y[i] and can_be_pos[j]]
        if negatives == "all":
            neg = [j for j in range(len(refs)) if ref_u[j] != u[i]]
        else:
            neg = [j for j in range(len(refs)) if ref_y[j] != y[i]]
        w = {j: (hardening(s[j]) if hardening is not None else torch.zeros((), dtype=torch.float64)) for j in neg}
        weighted = [j for j in neg if float(w[j].detach()) > -math.inf]
        ok = bool(pos) and bool(weighted)
        valid.append(ok)
        if not ok:
            per_anchor.append(torch.zeros((), dtype=torch.float64))
            continue
        if detach_weights:
            lz = _lse([w[j] for j in weighted]).detach()
            log_e = _lse([w[j].detach() - lz + s[j] for j in weighted])
        else:
            log_e = _lse([w[j] + s[j] for j in weighted]) - _lse([w[j] for j in weighted])
        losses = []
        for p in pos:
            ke = k * torch.exp(log_e)
            if debias > 0:
                ke = torch.maximum(
                    (ke - debias * k * torch.exp(s[p])) / (1 - debias),
                    torch.tensor(k * math.exp(-1 / t), dtype=torch.float64),
                )
            losses.append(-s[p] + torch.log(torch.exp(s[p]) + ke))
        pair_losses += losses
        per_anchor.append(torch.stack(losses).mean())
    per = torch.stack(per_anchor)
    if reduction == "none":
        return per.reshape(b, v), per, valid
    if reduction == "pairs":
        loss = torch.stack(pair_losses).mean() if pair_losses else per.sum() * 0
    else:
        n = sum(valid)
        loss = per.sum() / max(n, 1)
    return loss, per, valid


def reference_supcon(z, labels, temperature=0.1):
    z = z.double()
    b, v, d = z.shape
    x = z.reshape(b * v, d)
    x = x / x.norm(dim=1, keepdim=True)
    m = b * v
    y = [int(labels[i // v]) for i in range(m)]
    total, count = torch.zeros((), dtype=torch.float64), 0
    for i in range(m):
        s = [torch.dot(x[i], x[j]) / temperature for j in range(m)]
        pos = [j for j in range(m) if j != i and y[j] == y[i]]
        if not pos:
            continue
        den = _lse([s[j] for j in range(m) if j != i])
        total = total - torch.stack([s[p] - den for p in pos]).mean()
        count += 1
    return total / max(count, 1)
