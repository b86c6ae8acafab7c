"""Rewards by name: a registry of ``fn(response, example, **kwargs) -> float`` and ``build_reward``.

``example`` is the problem the response answers (id, problem, answer and any extra fields). The
config chooses one (``reward.name``: a registered name, or ``module:function``) and its keyword
arguments (``reward.kwargs``). Every reward runs in the same killable worker pool
(``asymrl.reward.pool``) with a time limit: a reward that raises scores 0 and is counted as an error,
one that hangs is killed, scores 0 and is counted as a timeout.

Workers import a reward by reference (``module:qualname``): define it at the top level of an
importable module, or of a script run as a file whose top-level code is under
``if __name__ == "__main__":``. Lambdas, nested functions and code typed into ``python -`` cannot be
imported by another process.

Use::

    from asymrl import reward

    @reward.register("exact_match")
    def exact_match(response: str, example: dict, strip: bool = True) -> float:
        return float((response.strip() if strip else response).endswith(example["answer"]))

    # reward.name=exact_match reward.kwargs.strip=false
"""

from __future__ import annotations

import inspect
import math
import numbers
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from asymrl.registry import Registry, configurable_parameters, import_reference
from asymrl.reward.pool import PooledReward, WorkerPool
from asymrl.reward.verifier import MathVerifier, default_num_workers, math_reward
from asymrl.toy.paths import paths_reward

if TYPE_CHECKING:
    from asymrl.config import RewardConfig

RewardFn = Callable[..., float]

# name -> fn(response, example, **params); ``get`` also imports ``module:function``.
REWARDS: Registry[RewardFn] = Registry("reward", leading=2)
register = REWARDS.register
available = REWARDS.available
get = REWARDS.get
register("math")(math_reward)
register("paths")(paths_reward)  # the path-finding toy task (asymrl.toy.paths)


def reference_of(fn: RewardFn) -> str:
    """``module:qualname`` by which a worker process imports ``fn``; a ValueError says why it cannot."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    rule = ("rewards run in worker processes that import them by reference: define it at the top level of a module, "
            'or of a script run as a file with its top-level code under `if __name__ == "__main__":`')
    if not module or not qualname or "<" in qualname:
        raise ValueError(f"reward {fn!r} cannot be imported by another process (a lambda, a nested function or a "
                         f"callable object); {rule}")
    if module == "__main__":
        main_file = getattr(sys.modules["__main__"], "__file__", None)
        if main_file is None or not Path(main_file).is_file():
            raise ValueError(f"reward {qualname} is defined in a main module that is not a file (python -c, python -, "
                             f"an interactive session); {rule}")
    reference = f"{module}:{qualname}"
    try:
        found = import_reference(reference)
    except (ImportError, AttributeError):
        found = None
    if found is not fn:
        raise ValueError(f"reward {fn!r} is not what {reference} names; {rule}")
    return reference


class FunctionReward(PooledReward):
    """A reward function called once per response in the worker pool, with its keyword arguments.
    A return value that is not a finite number raises a TypeError naming the reward."""

    def __init__(self, fn: RewardFn, kwargs: dict[str, Any], num_workers: int, timeout_s: float, memory_mb: int):
        self.reference = reference_of(fn)
        # Workers import the reward's module before they say ready: its imports are not charged to a case.
        warm_up = ("asymrl.registry:import_reference", (self.reference,), {})
        super().__init__(self.reference, WorkerPool(num_workers, timeout_s, memory_mb, warm_up=warm_up))
        self.kwargs = dict(kwargs)

    def score(self, responses: list[str], examples: list[dict]) -> list[float]:
        if len(responses) != len(examples):
            raise ValueError(f"{len(responses)} responses but {len(examples)} examples")
        outcomes = self.pool.run([(self.reference, (response, example), self.kwargs) for response, example in zip(responses, examples)])
        scores = []
        for outcome, example in zip(outcomes, examples):
            if outcome.status == "ok":
                value = outcome.value
                if not isinstance(value, numbers.Real) or not math.isfinite(value):
                    raise TypeError(f"reward {self.name} returned {value!r} ({type(value).__name__}) for example "
                                    f"{example.get('id')!r}: a reward must return a finite float")
                scores.append(float(value))
                continue
            if outcome.status == "error":
                if self.num_errors == 0:
                    warnings.warn(f"reward {self.name} raised {outcome.error} on example {example.get('id')!r}; it scores 0 "
                                  f"(errors are counted: reward/errors in metrics.jsonl)", RuntimeWarning, stacklevel=2)
                self.num_errors += 1
            scores.append(0.0)  # timeouts and crashes are counted by the pool
        return scores


def build_reward(config: "RewardConfig", reward_fn: RewardFn | None = None) -> PooledReward:
    """The reward that the trainer, ``evaluate`` and the toy report score with: ``config.name``
    (or ``reward_fn`` when given) with ``config.kwargs``, in a pool of ``config.num_workers``
    processes with ``config.timeout_s`` per case and ``config.memory_mb`` per worker."""
    # config.kwargs were checked against config.name when the config was built (config.check_reward_params);
    # a function passed in gets them as they are, and must not need more.
    fn = reward_fn if reward_fn is not None else get(config.name)
    missing = [p for p, default in configurable_parameters(fn, REWARDS.leading).items() if default is inspect.Parameter.empty and p not in config.kwargs]
    if missing:
        raise ValueError(f"reward {getattr(fn, '__qualname__', fn)} needs reward.kwargs.{', reward.kwargs.'.join(missing)}")
    num_workers = config.num_workers or default_num_workers()
    if fn is math_reward:  # the verifier decides most cases in this process and sends only SymPy's to workers
        return MathVerifier(num_workers, config.timeout_s, config.memory_mb)
    return FunctionReward(fn, config.kwargs, num_workers, config.timeout_s, config.memory_mb)
