"""``hscl demo``: the loss family compared on synthetic class-clustered embeddings.

Until the image and graph pipelines exist, the demo draws embeddings from a mixture of C Gaussian clusters on the
sphere (two noisy views per sample) at three cluster spreads, and prints every loss with the statistics that
explain it: mean positive and negative scores, the effective number of negatives and the share of UCL negatives
that are class collisions. No data is downloaded and nothing is trained.
"""

from __future__ import annotations

import math
import time

import torch

from .functional import contrastive_loss, supcon_loss
from .hardening import ExponentialTilt, Threshold

METHODS = (
    ("UCL", dict(negatives="all")),
    ("H-UCL (beta=1)", dict(negatives="all", hardening=ExponentialTilt(1.0))),
    ("SCL", dict(negatives="other_class")),
    ("H-SCL (tau=e^-0.5)", dict(negatives="other_class", hardening=Threshold(math.exp(-0.5)))),
    ("H-SCL (beta=1)", dict(negatives="other_class", hardening=ExponentialTilt(1.0))),
)


def clustered_embeddings(
    num_samples: int, num_classes: int, dim: int, spread: float, *, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views of ``num_samples`` points around ``num_classes`` random unit centres, and their labels."""
    centres = torch.nn.functional.normalize(torch.randn(num_classes, dim, generator=generator), dim=1)
    labels = torch.randint(num_classes, (num_samples,), generator=generator)
    points = centres[labels] + spread * torch.randn(num_samples, dim, generator=generator) / math.sqrt(dim)
    views = points[:, None, :] + 0.3 * spread * torch.randn(num_samples, 2, dim, generator=generator) / math.sqrt(dim)
    return views, labels


def run(num_samples: int = 512, num_classes: int = 10, dim: int = 64, seed: int = 0, temperature: float = 0.5) -> str:
    gen = torch.Generator().manual_seed(seed)
    lines = [
        "hscl demo: the loss family on synthetic class-clustered embeddings (no training, no download).",
        f"B={num_samples} samples x 2 views, {num_classes} classes, D={dim}, t={temperature}, seed={seed}.",
        "",
    ]
    header = (
        f"| {'spread':>6} | {'loss':<20} | {'value':>7} | {'mean s+':>7} | {'mean s-':>7} "
        f"| {'eff. neg':>8} | {'collis.':>7} |"
    )
    lines += [header, "|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|"]
    for spread in (0.5, 1.0, 2.0):
        z, y = clustered_embeddings(num_samples, num_classes, dim, spread, generator=gen)
        for name, opts in METHODS:
            loss, st = contrastive_loss(z, y, temperature=temperature, return_stats=True, **opts)
            s = st.as_dict()
            lines.append(
                f"| {spread:>6.1f} | {name:<20} | {float(loss):>7.4f} | {s['mean_positive_score']:>7.3f} | "
                f"{s['mean_negative_score']:>7.3f} | {s['effective_negatives']:>8.1f} | {s['collision_share']:>7.3f} |"
            )
        sup = supcon_loss(z, y, temperature=temperature)
        lines.append(
            f"| {spread:>6.1f} | {'SupCon':<20} | {float(sup):>7.4f} | {'':>7} | {'':>7} | {'':>8} | {'':>7} |"
        )
    start = time.perf_counter()
    z = torch.randn(num_samples, 2, dim, requires_grad=True)
    y = torch.randint(num_classes, (num_samples,), generator=gen)
    contrastive_loss(z, y, negatives="other_class", hardening=ExponentialTilt(1.0)).backward()
    ms = 1e3 * (time.perf_counter() - start)
    lines += [
        "",
        "As the clusters tighten (small spread), H-UCL rises above UCL while H-SCL stays near SCL: the hardest",
        "negatives of H-UCL are same-class samples (class collisions), which H-SCL excludes.",
        "'eff. neg' is exp(entropy) of the negative weights; 'collis.' the share of UCL negatives of the same class.",
        f"One H-SCL forward+backward at M={2 * num_samples}: {ms:.1f} ms on this machine.",
    ]
    return "\n".join(lines)
