"""Rewards: a registry of ``fn(response, example, **kwargs) -> float`` chosen by ``reward.name``, the
math verifier (``math``, the default), the path-finding task's reward (``paths``, in
``asymrl.toy.paths``), and ``build_reward``, which runs any of them in killable
worker processes with a time limit (``asymrl.reward.pool``)."""

from __future__ import annotations

from asymrl.reward.equivalence import fast_verdict, symbolic_equal
from asymrl.reward.extract import extract_answer
from asymrl.reward.normalize import normalize
from asymrl.reward.pool import PooledReward, WorkerStartError
from asymrl.reward.registry import REWARDS, RewardFn, available, build_reward, get, reference_of, register
from asymrl.reward.verifier import MathVerifier, math_reward, verify

__all__ = [
    "MathVerifier", "PooledReward", "REWARDS", "RewardFn", "WorkerStartError", "available", "build_reward", "extract_answer",
    "fast_verdict", "get", "math_reward", "normalize", "reference_of", "register", "symbolic_equal", "verify",
]
