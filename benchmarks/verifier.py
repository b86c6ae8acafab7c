"""Speed and accuracy of the math verifier, with math-verify's plain ``verify(parse(...))`` side by side.

    python benchmarks/verifier.py                      # 1,000 references -> 2,000 ordinary cases
    python benchmarks/verifier.py --references 300     # a quicker run

Ordinary cases are MATH solutions as responses: each MATH-500 / MATH-train solution as written
(correct: its final box is the reference answer) and the same solution with its final box replaced
by the next problem's different answer (incorrect). Measured on them: cases/s on one core (the
verifier in-process, and ``MathVerifier`` with one worker), scaling with 1 and 2 workers (over all
ordinary cases, and over the ones that need SymPy, the only ones the workers see), and p50/p99/max
latency per case. Measured on the labelled sets (tests/data/verifier_cases.jsonl and, when the data
folder holds it, verifier_public_cases.jsonl): accuracy, false positives / negatives, timeouts and the
slowest case. math-verify runs in-process on the same cases in the same run, with its own
(SIGALRM) time limits at their defaults. Every in-process measurement runs in a fresh process after
one warm-up case: math-verify and SymPy cache parses, and a second grader in the same process would
inherit the first one's caches. The MATH files (``math500.jsonl``, ``math_train.jsonl``) are read from
``--data-dir`` (default ``$ASYMRL_DATA_DIR``). Writes ``benchmarks/results/verifier_cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from asymrl.reward import MathVerifier, extract_answer, fast_verdict, normalize, symbolic_equal
from asymrl.reward.extract import HEDGE
from common import provenance  # benchmarks/common.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
OWN_CASES = ROOT / "tests" / "data" / "verifier_cases.jsonl"
RESULT = ROOT / "benchmarks" / "results" / "verifier_cpu.json"
TARGETS = {"accuracy": 0.97, "false_positives": 2, "cases_per_s_per_core": 100.0}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def with_final_answer(solution: str, answer: str, new_answer: str) -> str:
    """``solution`` with its final ``\\boxed{answer}`` replaced by ``\\boxed{new_answer}`` (appended
    when the solution boxes its answer some other way)."""
    box = f"\\boxed{{{answer}}}"
    at = solution.rfind(box)
    if at < 0:
        return f"{solution}\nSo the answer is $\\boxed{{{new_answer}}}$."
    return f"{solution[:at]}\\boxed{{{new_answer}}}{solution[at + len(box):]}"


def ordinary_cases(data_dir: Path, references: int, seed: int = 0) -> list[dict]:
    """Correct and incorrect MATH solutions: all of MATH-500, then MATH train rows drawn with ``seed``,
    ``references`` rows in all, two cases each. The incorrect answer is the next row's whose answer
    normalises differently (benchmarks/verifier_references.py finds no such pair the verifier equates)."""
    rows = read_jsonl(data_dir / "math500.jsonl")
    train = [row for row in read_jsonl(data_dir / "math_train.jsonl") if row["answer"].strip()]
    rows = (rows + random.Random(seed).sample(train, max(0, references - len(rows))))[:references]
    normalised = [normalize(row["answer"]) for row in rows]
    cases = []
    for index, row in enumerate(rows):
        other = next(rows[(index + k) % len(rows)] for k in range(1, len(rows)) if normalised[(index + k) % len(rows)] != normalised[index])
        cases.append({"response": row["solution"], "reference": row["answer"], "expected": 1})
        cases.append({"response": with_final_answer(row["solution"], row["answer"], other["answer"]), "reference": row["answer"], "expected": 0})
    return cases


def labelled_cases(data_dir: Path) -> dict[str, list[dict]]:
    """The project's labelled cases and the anchors' public ones, as (response, reference, expected)."""
    sets = {"own": [{"response": c["response"], "reference": c["reference"], "expected": c["expected"]} for c in read_jsonl(OWN_CASES)]}
    public = data_dir / "verifier_public_cases.jsonl"
    if public.is_file():
        sets["public"] = [{"response": c["response"], "reference": c["gold"], "expected": c["expected"]} for c in read_jsonl(public)]
    return sets


def grade_in_process(response: str, reference: str) -> float:
    """The verifier's pipeline in the calling process, without the worker pool's time limit (for
    ordinary cases only: the limit exists because some inputs never finish)."""
    answer = extract_answer(response, or_is_list=bool(HEDGE.search(reference)))
    if answer is None:
        return 0.0
    verdict = fast_verdict(answer, reference)
    return float(symbolic_equal(answer, reference) if verdict is None else verdict)


def math_verify_plain(response: str, reference: str) -> float:
    """math-verify as its README uses it: ``verify(parse(gold), parse(answer))`` with default configs
    and time limits (SIGALRM, main thread only); the gold is wrapped in ``$`` as its README does."""
    import math_verify

    try:
        return float(math_verify.verify(math_verify.parse(f"${reference}$"), math_verify.parse(response)))
    except Exception:  # math-verify raises on some inputs: that is a 0, as a trainer would score it
        return 0.0


GRADERS = {"asymrl_in_process": grade_in_process, "math_verify": math_verify_plain}


def _timed_after_warm_up(grader: str, cases: list[dict]) -> tuple[list[float], list[float]]:
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its "timeout disabled" warnings, once per call
    GRADERS[grader]("The answer is $\\boxed{x^2+1}$.", "1+x^2")  # imports and first-call set-up
    return timed(GRADERS[grader], cases)


def timed_in_fresh_process(grader: str, cases: list[dict]) -> tuple[list[float], list[float]]:
    """``timed`` for one of ``GRADERS`` in a new process (its main thread, where SIGALRM works)."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as executor:
        return executor.submit(_timed_after_warm_up, grader, cases).result()


def timed(grade, cases: list[dict]) -> tuple[list[float], list[float]]:
    """Scores and per-case latencies (seconds) of ``grade(response, reference)`` over ``cases``."""
    scores, latencies = [], []
    for case in cases:
        started = time.perf_counter()
        scores.append(grade(case["response"], case["reference"]))
        latencies.append(time.perf_counter() - started)
    return scores, latencies


def latency_summary(latencies: list[float]) -> dict:
    """Cases/s and p50 / p99 / max latency in milliseconds."""
    ordered = sorted(latencies)
    return {
        "cases": len(ordered),
        "cases_per_s": round(len(ordered) / sum(ordered), 1),
        "p50_ms": round(1e3 * statistics.median(ordered), 3),
        "p99_ms": round(1e3 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
        "max_ms": round(1e3 * ordered[-1], 3),
    }


def accuracy(scores: list[float], cases: list[dict]) -> dict:
    """Right, false positives and false negatives of ``scores`` against the labels."""
    false_positives = sum(s == 1 and not c["expected"] for s, c in zip(scores, cases))
    false_negatives = sum(s != 1 and c["expected"] for s, c in zip(scores, cases))
    right = len(cases) - false_positives - false_negatives
    return {"cases": len(cases), "right": right, "accuracy": round(right / len(cases), 4),
            "false_positives": false_positives, "false_negatives": false_negatives}


def pool_per_case(verifier: MathVerifier, cases: list[dict]) -> tuple[list[float], list[float], int]:
    """Scores, per-case latencies and timeouts with each case sent to ``verifier`` alone."""
    before = verifier.num_timeouts
    scores, latencies = timed(lambda response, reference: verifier.score_batch([response], [reference])[0], cases)
    return scores, latencies, verifier.num_timeouts - before


def pool_batch_throughput(workers: int, timeout_s: float, cases: list[dict]) -> dict:
    """Cases/s of one ``score_batch`` over all ``cases`` with ``workers`` workers (started beforehand)."""
    with MathVerifier(num_workers=workers, timeout_s=timeout_s) as verifier:
        verifier.score_batch(["\\boxed{x^2}"] * workers, ["x*x"] * workers)  # start and warm every worker
        started = time.perf_counter()
        scores = verifier.score_batch([c["response"] for c in cases], [c["reference"] for c in cases])
        elapsed = time.perf_counter() - started
        return {"workers": workers, "cases_per_s": round(len(cases) / elapsed, 1), "seconds": round(elapsed, 3),
                "sent_to_workers": verifier.num_symbolic - workers, "timeouts": verifier.num_timeouts,
                **{k: v for k, v in accuracy(scores, cases).items() if k != "cases"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--references", type=int, default=1000, help="MATH rows for ordinary cases (two cases each)")
    parser.add_argument("--timeout", type=float, default=2.0, help="asymrl's per-case limit, seconds")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="pool sizes for the scaling run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", default="", help="free text recorded in the JSON (e.g. what else the machine ran)")
    parser.add_argument("--output", type=Path, default=RESULT)
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("ASYMRL_DATA_DIR") or None,
                        help="folder of math500.jsonl, math_train.jsonl (and verifier_public_cases.jsonl); default $ASYMRL_DATA_DIR")
    args = parser.parse_args()
    if args.data_dir is None:
        parser.error("--data-dir (or $ASYMRL_DATA_DIR): the folder holding math500.jsonl and math_train.jsonl")

    ordinary = ordinary_cases(args.data_dir, args.references, args.seed)
    labelled = labelled_cases(args.data_dir)
    report: dict = {
        "command": shlex.join(["python", *sys.argv]),
        "provenance": provenance(shlex.join(["python", *sys.argv])),
        "config": {"references": args.references, "ordinary_cases": len(ordinary), "timeout_s": args.timeout,
                   "workers": args.workers, "seed": args.seed,
                   "math_verify_call": "math_verify.verify(math_verify.parse('$' + gold + '$'), math_verify.parse(response))"},
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average_at_start": os.getloadavg()},
        "note": args.note,
        "targets": {**TARGETS, "per_case_limit_s": args.timeout},
    }

    # Ordinary cases, one core: the verifier in-process, then behind one worker, then math-verify.
    scores, latencies = timed_in_fresh_process("asymrl_in_process", ordinary)
    asymrl = {"in_process": {**latency_summary(latencies), **accuracy(scores, ordinary)}}
    with MathVerifier(num_workers=1, timeout_s=args.timeout) as verifier:
        verifier.score_batch(["\\boxed{x^2}"], ["x*x"])  # start the worker outside the timing
        scores, latencies, timeouts = pool_per_case(verifier, ordinary)
        asymrl["one_worker_per_case"] = {**latency_summary(latencies), **accuracy(scores, ordinary), "timeouts": timeouts}
    asymrl["scaling"] = [pool_batch_throughput(workers, args.timeout, ordinary) for workers in args.workers]
    # Most ordinary cases never reach a worker (decided in the parent); these are the ones that do.
    symbolic = [c for c in ordinary if fast_verdict(extract_answer(c["response"]) or "", c["reference"]) is None]
    asymrl["scaling_symbolic_only"] = [pool_batch_throughput(workers, args.timeout, symbolic) for workers in args.workers]
    scores, latencies = timed_in_fresh_process("math_verify", ordinary)
    report["ordinary"] = {"asymrl": asymrl, "math_verify": {**latency_summary(latencies), **accuracy(scores, ordinary)}}
    print("ordinary", json.dumps(report["ordinary"]), flush=True)

    # Labelled sets: accuracy, and the slowest case against the per-case limit; "all" pools them.
    report["labelled"] = {}
    measured = {"asymrl": ([], [], []), "math_verify": ([], [], [])}  # scores, latencies, cases
    with MathVerifier(num_workers=1, timeout_s=args.timeout) as verifier:
        verifier.score_batch(["\\boxed{x^2}"], ["x*x"])
        for name, cases in labelled.items():
            scores, latencies, timeouts = pool_per_case(verifier, cases)
            mv_scores, mv_latencies = timed_in_fresh_process("math_verify", cases)
            for grader, (s, t) in (("asymrl", (scores, latencies)), ("math_verify", (mv_scores, mv_latencies))):
                measured[grader][0].extend(s), measured[grader][1].extend(t), measured[grader][2].extend(cases)
            report["labelled"][name] = {
                "asymrl": {**accuracy(scores, cases), "timeouts": timeouts, **latency_summary(latencies)},
                "math_verify": {**accuracy(mv_scores, cases), **latency_summary(mv_latencies)},
            }
            print(name, json.dumps(report["labelled"][name]), flush=True)
        total_timeouts = verifier.num_timeouts
    report["labelled"]["all"] = {grader: {**accuracy(s, c), **latency_summary(t)} for grader, (s, t, c) in measured.items()}
    report["labelled"]["all"]["asymrl"]["timeouts"] = total_timeouts

    every = report["labelled"]["all"]["asymrl"]
    one_core = max(report["ordinary"]["asymrl"]["in_process"]["cases_per_s"], asymrl["scaling"][0]["cases_per_s"])
    report["targets_met"] = {
        "accuracy": every["accuracy"] >= TARGETS["accuracy"],
        "false_positives": every["false_positives"] <= TARGETS["false_positives"],
        "per_case_limit": every["max_ms"] / 1e3 <= args.timeout + 0.5,  # + killing and respawning a worker
        "cases_per_s_per_core": one_core >= TARGETS["cases_per_s_per_core"],
    }
    report["machine"]["load_average_at_end"] = os.getloadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["targets_met"]), f"wrote {args.output}")


if __name__ == "__main__":
    main()
