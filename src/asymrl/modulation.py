"""Adaptive AsymGRPO: exponents alpha+ / alpha- that move during training (the paper's stated future
work: Gu et al. 2026, arXiv 2604.04894, its limitations).

``algorithm.alpha_schedule`` chooses how the estimator's ``alpha_pos`` / ``alpha_neg`` evolve:

* ``constant``: the configured values throughout (the paper's AsymGRPO);
* ``linear`` / ``cosine``: from the configured value to ``algorithm.alpha_pos_end`` /
  ``alpha_neg_end`` over the run's steps (:func:`scheduled_value`);
* ``entropy_target``: a controller holds the token entropy near ``algorithm.target_entropy`` by
  moving alpha+ (:func:`entropy_controller_step`). A larger alpha+ raises the positive advantage of
  rare successes (``((1-p)/p)^a`` grows with ``a`` where ``p < 1/2``) and lowers it on confident
  ones, the updates that raise and that lower entropy respectively (docs/method.md sec. 2; Cui et al.
  2025): so alpha+ goes up when entropy falls below the target, down when it rises above. In the
  spirit of the adaptive entropy coefficient of Skywork-OR1, acting on the positive channel's
  modulation instead of adding a bonus.

Pure functions of numbers; the trainer keeps the controller's value in its checkpointed state.
"""

from __future__ import annotations

import math


def scheduled_value(start: float, end: float, step: int, total_steps: int, shape: str) -> float:
    """The value at RL step ``step`` (0-based) of a schedule from ``start`` (step 0) to ``end`` (the
    last step, ``total_steps - 1``): ``linear``, or ``cosine`` (half a cosine: slow, fast, slow)."""
    progress = min(1.0, max(0.0, step / max(1, total_steps - 1)))
    if shape == "linear":
        weight = progress
    elif shape == "cosine":
        weight = 0.5 * (1.0 - math.cos(math.pi * progress))
    else:
        raise ValueError(f"unknown schedule shape {shape!r}; choose linear or cosine")
    return start + (end - start) * weight


def entropy_controller_step(alpha: float, entropy: float, target: float, rate: float, low: float, high: float) -> float:
    """One step of the integral controller: ``alpha + rate (target - entropy)``, kept in ``[low, high]``.
    Entropy below target raises alpha+ (more weight on rare successes), above target lowers it."""
    return min(high, max(low, alpha + rate * (target - entropy)))


def exponents_at(step: int, total_steps: int, schedule: str, start: dict[str, float], end: dict[str, float],
                 controlled: dict[str, float] | None) -> dict[str, float]:
    """The estimator's exponents for ``step``: ``start`` (the configured ``alpha_pos`` / ``alpha_neg``
    of the estimator), moved by the schedule toward ``end`` (only the names set there), or, under
    ``entropy_target``, the controller's current values ``controlled`` (``start`` before its first step)."""
    if schedule == "constant":
        return dict(start)
    if schedule == "entropy_target":
        return {**start, **(controlled or {})}
    return {name: scheduled_value(value, end[name], step, total_steps, schedule) if name in end else value
            for name, value in start.items()}
