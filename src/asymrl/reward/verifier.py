"""``MathVerifier``: the default reward, 1.0 when a response's final answer equals the reference.

The parent extracts answers and decides most cases itself (``fast_verdict``); only cases that need
SymPy go to the worker pool, so most batches never leave the process. Parsed SymPy objects never
leave a worker: only booleans come back. A SymPy failure is a wrong answer, not an error.
"""

from __future__ import annotations

import atexit
import os

from asymrl.reward.equivalence import fast_verdict
from asymrl.reward.extract import HEDGE, extract_answer
from asymrl.reward.pool import PooledReward, WorkerPool

# Each worker parses once before it says ready: imports and SymPy's first call cost ~2 s, which a case's limit must not pay.
_WARM_UP = ("asymrl.reward.equivalence:symbolic_equal", ("x+1", "1+x"), {})


def default_num_workers() -> int:
    return max(1, min(4, os.cpu_count() or 2))


class MathVerifier(PooledReward):
    """Scores responses against reference answers: 1.0 if equivalent, else 0.0.

    ``score_batch(responses, references)`` returns scores in input order (``score(responses,
    examples)`` reads ``example["answer"]``); ``num_timeouts`` counts SymPy cases killed for
    overrunning ``timeout_s`` since construction. Use as a context manager or call ``close()``.
    """

    def __init__(self, num_workers: int | None = None, timeout_s: float = 2.0, memory_mb: int = 2048):
        super().__init__("math", WorkerPool(num_workers or default_num_workers(), timeout_s, memory_mb, warm_up=_WARM_UP))
        self.num_symbolic = 0

    def score(self, responses: list[str], examples: list[dict]) -> list[float]:
        return self.score_batch(responses, [example["answer"] for example in examples])

    def score_batch(self, responses: list[str], references: list[str]) -> list[float]:
        if len(responses) != len(references):
            raise ValueError(f"{len(responses)} responses but {len(references)} references")
        scores = [0.0] * len(responses)
        symbolic: list[tuple[int, str, str]] = []
        for index, (response, reference) in enumerate(zip(responses, references)):
            answer = extract_answer(response, or_is_list=bool(HEDGE.search(reference)))
            if answer is None:
                continue
            verdict = fast_verdict(answer, reference)
            if verdict is None:
                symbolic.append((index, answer, reference))
            else:
                scores[index] = float(verdict)
        if symbolic:
            self.num_symbolic += len(symbolic)
            outcomes = self.pool.run([("asymrl.reward.equivalence:symbolic_equal", (answer, reference), {})
                                      for _, answer, reference in symbolic])
            for (index, _, _), outcome in zip(symbolic, outcomes):
                # Not "ok": SymPy failed (a wrong answer), or the case was timed out / crashed (counted by the pool).
                scores[index] = float(outcome.status == "ok" and bool(outcome.value))
        return scores


_default: MathVerifier | None = None


def verify(response: str, reference: str) -> float:
    """1.0 if the final answer of ``response`` is equivalent to ``reference``, else 0.0."""
    global _default
    if _default is None:
        _default = MathVerifier(num_workers=1)
        atexit.register(_default.close)
    return _default.score_batch([response], [reference])[0]


def math_reward(response: str, example: dict) -> float:
    """The ``math`` reward: ``verify`` against ``example["answer"]``."""
    return verify(response, example["answer"])
