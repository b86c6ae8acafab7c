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

import difflib
import inspect
import math
import numbers
import sys
import typing
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from asymrl.reward.pool import PooledReward, WorkerPool, resolve_reference
from asymrl.reward.verifier import MathVerifier, default_num_workers, math_reward

if TYPE_CHECKING:
    from asymrl.config import RewardConfig

RewardFn = Callable[..., float]

_REGISTRY: dict[str, RewardFn] = {}


def register(name: str) -> Callable[[RewardFn], RewardFn]:
    """Decorator that adds a reward ``fn(response, example, **kwargs) -> float`` to the registry."""

    def decorator(fn: RewardFn) -> RewardFn:
        if name in _REGISTRY:
            raise ValueError(f"reward {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return decorator


register("math")(math_reward)


def available() -> list[str]:
    """Names of every registered reward, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> RewardFn:
    """The reward registered as ``name``, or the function ``module:function`` names (imported)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" not in name:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        raise ValueError(f"unknown reward {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                         + f"; registered: {', '.join(available())}; or give module:function")
    try:
        fn = resolve_reference(name)
    except Exception as error:  # a missing module or name, or one that fails on import
        raise ValueError(f"cannot import reward {name!r}: {type(error).__name__}: {error}") from None
    if not callable(fn):
        raise ValueError(f"reward {name!r} is a {type(fn).__name__}, not a function")
    return fn


def parameters(fn: RewardFn) -> dict[str, Any]:
    """The keyword parameters of ``fn`` after ``(response, example)``, each with its type: the
    annotation, else the type of its default, else ``Any``."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # annotations that do not resolve (forward references): use the defaults' types
        hints = {}
    params = list(inspect.signature(fn).parameters.values())[2:]
    types = {}
    for p in params:
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            has_default = p.default is not p.empty and p.default is not None
            types[p.name] = hints.get(p.name, type(p.default) if has_default else Any)
    return types


def check_kwargs(fn: RewardFn, kwargs: dict[str, Any]) -> list[str]:
    """Problems of ``kwargs`` for ``fn`` (unknown or missing parameters), each naming ``reward.kwargs.<name>``."""
    signature, label = inspect.signature(fn), getattr(fn, "__qualname__", repr(fn))
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2 and not any(p.kind == p.VAR_POSITIONAL for p in params):
        return [f"reward.name: {label}{signature} must take (response, example, **kwargs)"]
    accepted = parameters(fn)
    problems = []
    if not any(p.kind == p.VAR_KEYWORD for p in params):
        for name in kwargs:
            if name not in accepted:
                close = difflib.get_close_matches(name, accepted, n=1)
                problems.append(f"reward.kwargs.{name}: {label} has no parameter {name!r}"
                                + (f"; did you mean {close[0]!r}?" if close else f"; it takes {', '.join(accepted) or 'none'}"))
    for p in params[2:]:
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty and p.name not in kwargs:
            problems.append(f"reward.kwargs.{p.name}: required by {label}, not set")
    return problems


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
        found = resolve_reference(reference)
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
        warm_up = ("asymrl.reward.pool:resolve_reference", (self.reference,), {})
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
    fn = reward_fn if reward_fn is not None else get(config.name)
    problems = check_kwargs(fn, config.kwargs)
    if problems:
        raise ValueError("invalid reward:\n  " + "\n  ".join(problems))
    num_workers = config.num_workers or default_num_workers()
    if fn is math_reward:  # the verifier decides most cases in this process and sends only SymPy's to workers
        return MathVerifier(num_workers, config.timeout_s, config.memory_mb)
    return FunctionReward(fn, config.kwargs, num_workers, config.timeout_s, config.memory_mb)
