"""A math task with worked solutions, deterministic by seed, in the schema of ../shared/data.

Four levels, each answer in a form the verifier must handle:

1. two-digit addition with carries            ``Compute 47+38.``        -> ``85``
2. three-digit addition / subtraction         ``Compute 312-587.``      -> ``-275``
3. linear equations with integer solutions    ``Solve 3x+7=-8.``        -> ``-5``
4. fractions to reduce                        ``Reduce 18/24.``         -> ``\\frac{3}{4}``

Solutions are written column by column (or step by step), so a mistake is local: a sampled
solution is usually right except for one step, which is what RL can fix. Operand ranges are large
enough (tens of thousands of distinct problems per level) that validation and RL problems are
unseen in supervised warm-up: the splits are disjoint by problem text.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path

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
    """``ax+b=c`` with an integer solution: ``ax=c-b=...`` then ``x=.../a=...``."""
    a = rng.randint(2, 9)
    x = rng.randint(-12, 19)
    b = rng.choice([v for v in range(-30, 31) if v != 0])
    c = a * x + b
    sign = "+" if b > 0 else "-"
    work = f"{a}x={c}{'-' if b > 0 else '+'}{abs(b)}={a * x}. x={a * x}/{a}={x}."
    return {"problem": f"Solve {a}x{sign}{abs(b)}={c}.", "answer": str(x), "solution": f"{work} \\boxed{{{x}}}"}


def level4(rng: random.Random) -> dict:
    """``Reduce 18/24.``: ``gcd=6. 18/6=3. 24/6=4.`` then ``\\frac{3}{4}`` (or an integer)."""
    while True:
        p, q = rng.randint(1, 25), rng.randint(2, 26)
        if math.gcd(p, q) == 1:
            break
    k = rng.randint(2, 15)
    numerator, denominator = p * k, q * k
    answer = f"\\frac{{{p}}}{{{q}}}"
    work = f"gcd={k}. {numerator}/{k}={p}. {denominator}/{k}={q}."
    return {"problem": f"Reduce {numerator}/{denominator}.", "answer": answer, "solution": f"{work} \\boxed{{{answer}}}"}


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
# SFT sees every level equally; RL and evaluation lean on levels 3-4, where the warm-started policy
# is right about a third of the time and most groups of G samples are mixed (levels 1-2 end up
# nearly solved by SFT: they check that RL does not break what works).
SPLIT_LEVEL_WEIGHTS = {"sft": (1.0, 1.0, 1.0, 1.0), "train": (0.15, 0.15, 0.4, 0.3),
                       "validation": (0.15, 0.15, 0.4, 0.3), "test": (0.15, 0.15, 0.4, 0.3)}


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
