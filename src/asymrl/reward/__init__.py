"""Rewards: the math verifier (default) and the pluggable ``reward_fn(response, example)`` contract."""

from __future__ import annotations

import atexit

from asymrl.reward.equivalence import fast_verdict, symbolic_equal
from asymrl.reward.extract import extract_answer
from asymrl.reward.normalize import normalize
from asymrl.reward.pool import MathVerifier

_default: MathVerifier | None = None


def verify(response: str, reference: str) -> float:
    """1.0 if the final answer of ``response`` is equivalent to ``reference``, else 0.0."""
    global _default
    if _default is None:
        _default = MathVerifier(num_workers=1)
        atexit.register(_default.close)
    return _default.score_batch([response], [reference])[0]


def math_reward(response: str, example: dict) -> float:
    """The default ``reward_fn``: ``verify`` against ``example["answer"]``."""
    return verify(response, example["answer"])


__all__ = ["MathVerifier", "extract_answer", "fast_verdict", "math_reward", "normalize", "symbolic_equal", "verify"]
