"""pass@k by the unbiased estimator of Chen et al. 2021 (Codex, arXiv 2107.03374, eq. 1).

With ``n`` samples of a problem of which ``c`` are correct, the probability that ``k`` samples drawn
without replacement from them contain a correct one is

    pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n - c + 1}^{n} (1 - k / i)

(the product form avoids huge binomials). Averaged over problems it estimates the probability that
a policy solves a problem in k tries, without the bias of taking k of the n samples once.
"""

from __future__ import annotations

import math

import torch


def pass_at_k(correct: torch.Tensor, k: int) -> torch.Tensor:
    """Per-problem unbiased pass@k from ``correct`` ``(problems, n)`` (1 = a correct sample), ``k <= n``."""
    n = correct.shape[-1]
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n = {n}, got k = {k}")
    c = (correct > 0.5).sum(dim=-1)
    i = torch.arange(1, n + 1, dtype=torch.float64)
    # The factors (1 - k / i) for i in (n - c, n], 1 elsewhere. When n - c < k, i = k is among them:
    # the product is 0 and pass@k is 1, as it must be (k draws cannot all miss the c correct ones).
    factors = torch.where(i.unsqueeze(0) > (n - c).unsqueeze(-1), 1.0 - k / i, torch.ones_like(i))
    return 1.0 - factors.prod(dim=-1)


def k_values(n: int) -> list[int]:
    """The ks of a pass@k curve for n samples: 1, 2, 4, ... up to n, and n itself."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return ks + [n]


def pass_at_1_sampling_se(correct: torch.Tensor) -> float | None:
    """The standard error of mean pass@1 over ``correct`` ``(problems, n)`` that comes from sampling
    the responses, the problems held fixed: the evaluation's own noise when two policies are scored on the
    same problems (the problems' spread of difficulty is common to both and cancels).

    The mean of N problems' fractions c_i / n has variance sum_i p_i (1 - p_i) / (n N^2), and
    c_i (n - c_i) / (n (n - 1)) estimates p_i (1 - p_i) without bias, so

        SE^2 = sum_i c_i (n - c_i) / (n^2 (n - 1) N^2).

    ``None`` for n = 1 (one sample per problem tells nothing of its own spread)."""
    problems, n = correct.shape
    if n < 2:
        return None
    c = (correct > 0.5).sum(dim=-1).to(torch.float64)
    return math.sqrt(float((c * (n - c)).sum()) / (n * n * (n - 1) * problems * problems))


def pass_at_k_curve(correct: torch.Tensor) -> dict[int, float]:
    """Mean over problems of pass@k for every k of :func:`k_values` (``correct``: ``(problems, n)``)."""
    return {k: float(pass_at_k(correct, k).mean()) for k in k_values(correct.shape[-1])}
