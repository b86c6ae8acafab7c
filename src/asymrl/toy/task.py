"""A math task with worked solutions, deterministic by seed, in the schema of the math benchmarks
(``problem``, ``answer``, plus ``solution`` and ``level``).

Four levels, each answer in a form the verifier must handle:

1. two-digit addition with carries            ``Compute 47+38.``        -> ``85``
2. three-digit addition / subtraction         ``Compute 312-587.``      -> ``-275``
3. linear equations with integer solutions    ``Solve 7x-12=51.``       -> ``9``
4. fractions to reduce                        ``Reduce 18/24.``         -> ``\\frac{3}{4}``

Every solution is a chain of small local steps (column arithmetic, one times-table division, one
prime at a time), so a mistake is a local slip: an under-trained policy is right at most steps and
unsure at a few, which is what RL can fix. Operand ranges are large
enough (tens of thousands of distinct problems per level) that validation and RL problems are
unseen in supervised warm-up: the splits are disjoint by problem text.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path

from asymrl.toy import cache_root, ensure_generated

LEVELS = (1, 2, 3, 4)


def _column_addition(a: int, b: int) -> str:
    """``347+285``: ``7+5=12 c1. 4+8+1=13 c1. 3+2+1=6.`` (right to left, carry noted)."""
    steps, carry = [], 0
    da, db = str(a)[::-1], str(b)[::-1]
    for i in range(max(len(da), len(db))):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        total = x + y + carry
        term = f"{x}+{y}" + (f"+{carry}" if carry else "")
        carry = total // 10
        steps.append(f"{term}={total}" + (" c1." if carry else "."))
    return " ".join(steps)


def _column_subtraction(a: int, b: int) -> str:
    """``a - b`` with ``a >= b``: ``7-5=2. 14-8=6 b1. 3-1-2=0.`` (borrow noted)."""
    steps, borrow = [], 0
    da, db = str(a)[::-1], str(b)[::-1]
    for i in range(len(da)):
        x = int(da[i]) - borrow
        y = int(db[i]) if i < len(db) else 0
        borrow = 1 if x < y else 0
        top = x + 10 * borrow
        steps.append(f"{top}-{y}={top - y}" + (" b1." if borrow else "."))
    return " ".join(steps)


def _addition_problem(rng: random.Random, digits: int) -> dict:
    low, high = 10 ** (digits - 1), 10**digits - 1
    a, b = rng.randint(low, high), rng.randint(low, high)
    return {"problem": f"Compute {a}+{b}.", "answer": str(a + b), "solution": f"{_column_addition(a, b)} \\boxed{{{a + b}}}"}


def level1(rng: random.Random) -> dict:
    return _addition_problem(rng, 2)


def level2(rng: random.Random) -> dict:
    if rng.random() < 0.5:
        return _addition_problem(rng, 3)
    a, b = rng.randint(100, 999), rng.randint(100, 999)
    result = a - b
    if a >= b:
        work = _column_subtraction(a, b)
    else:  # a - b = -(b - a)
        work = f"{a}-{b}=-({b}-{a}). {_column_subtraction(b, a)}"
    return {"problem": f"Compute {a}-{b}.", "answer": str(result), "solution": f"{work} \\boxed{{{result}}}"}


def level3(rng: random.Random) -> dict:
    """``ax+b=c`` or ``ax-b=c`` with ``x`` in 1..12: the right side is worked column by column, then
    one division from the times table: ``7x=51+12. 1+2=3. 5+1=6. 7x=63. x=63/7=9.``"""
    a, x = rng.randint(2, 9), rng.randint(1, 12)
    product = a * x
    if rng.random() < 0.5 or product < 3:  # ax - b = c, so ax = c + b
        b = rng.randint(1, 60)
        c = product - b
        if c < 1:
            b, c = product - 1, 1
        if b < 1:
            b, c = 1, product - 1
        problem, work = f"Solve {a}x-{b}={c}.", f"{a}x={c}+{b}. {_column_addition(c, b)}"
    else:  # ax + b = c, so ax = c - b
        b = rng.randint(1, 60)
        c = product + b
        problem, work = f"Solve {a}x+{b}={c}.", f"{a}x={c}-{b}. {_column_subtraction(c, b)}"
    return {"problem": problem, "answer": str(x), "solution": f"{work} {a}x={product}. x={product}/{a}={x}. \\boxed{{{x}}}"}


def _prime_factors(value: int) -> list[int]:
    factors, divisor = [], 2
    while value > 1:
        while value % divisor == 0:
            factors.append(divisor)
            value //= divisor
        divisor += 1
    return factors


def level4(rng: random.Random) -> dict:
    """``Reduce 18/24.``: divide by one prime at a time, ``18/24. /2: 9/12. /3: 3/4.`` -> ``\\frac{3}{4}``."""
    while True:
        p, q = rng.randint(1, 25), rng.randint(2, 26)
        if math.gcd(p, q) == 1:
            break
    k = rng.choice([2, 3, 4, 5, 6, 8, 9, 10, 12, 15])
    numerator, denominator = p * k, q * k
    steps, top, bottom = [f"{numerator}/{denominator}."], numerator, denominator
    for prime in _prime_factors(k):
        top, bottom = top // prime, bottom // prime
        steps.append(f"/{prime}: {top}/{bottom}.")
    answer = f"\\frac{{{p}}}{{{q}}}"
    return {"problem": f"Reduce {numerator}/{denominator}.", "answer": answer, "solution": f"{' '.join(steps)} \\boxed{{{answer}}}"}


GENERATORS = {1: level1, 2: level2, 3: level3, 4: level4}

# Share of each split per problem, decided by a hash of the problem text: disjoint splits.
SPLIT_BUCKETS = (("sft", 60), ("train", 15), ("validation", 15), ("test", 10))


def split_of(problem: str) -> str:
    """The split a problem belongs to, a pure function of its text (so splits never overlap)."""
    bucket = int(hashlib.sha256(problem.encode()).hexdigest()[:8], 16) % 100
    for name, share in SPLIT_BUCKETS:
        if bucket < share:
            return name
        bucket -= share
    raise AssertionError("split shares must add up to 100")


def generate_problems(seed: int, n: int, levels: tuple[int, ...] = LEVELS, weights: tuple[float, ...] | None = None,
                      split: str | None = None) -> list[dict]:
    """``n`` distinct problems (``id, problem, answer, level, solution``), deterministic by seed.

    With ``split`` only problems of that split are kept (generation continues until ``n``).
    """
    rng = random.Random(seed)
    seen: set[str] = set()
    problems = []
    attempts = 0
    while len(problems) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"cannot draw {n} distinct problems of levels {levels} for split {split!r}")
        level = rng.choices(levels, weights=weights)[0]
        item = GENERATORS[level](rng)
        if item["problem"] in seen or (split is not None and split_of(item["problem"]) != split):
            continue
        seen.add(item["problem"])
        problems.append({"id": f"toy-{split or 'all'}-{len(problems)}", "level": level, **item})
    return problems


DEFAULT_SIZES = {"sft": 60000, "train": 4000, "validation": 1000, "test": 1000}
# Every split draws the four levels equally (a level whose distinct problems run out in a split's
# share is topped up by the others).
SPLIT_LEVEL_WEIGHTS = {split: (1.0, 1.0, 1.0, 1.0) for split in DEFAULT_SIZES}


def write_splits(out_dir: Path, seed: int = 0, sizes: dict[str, int] | None = None) -> dict[str, Path]:
    """Write ``<split>.jsonl`` for sft / train / validation / test; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for index, (split, size) in enumerate((sizes or DEFAULT_SIZES).items()):
        problems = generate_problems(seed * 100 + index, size, weights=SPLIT_LEVEL_WEIGHTS[split], split=split)
        path = out_dir / f"{split}.jsonl"
        with path.open("w") as handle:
            for problem in problems:
                handle.write(json.dumps(problem) + "\n")
        paths[split] = path
    return paths


# The version of the generated data: a change to the generators must bump it (the cache is keyed by it).
VERSION = "v3"
SPLITS = tuple(DEFAULT_SIZES)


def data_dir() -> Path:
    """The cache folder of the task's splits (generated from seed 0)."""
    return cache_root() / f"tiny-{VERSION}" / "data"


def ensure_task_data() -> dict[str, Path]:
    """The task's sft / train / validation / test JSONL files, generated into the cache on first use."""
    return ensure_generated(data_dir(), SPLITS, lambda folder: write_splits(folder, 0))
