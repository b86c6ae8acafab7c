"""Every reference answer of the math datasets against the verifier: itself boxed, and another problem's.

    python benchmarks/verifier_references.py                          # all six datasets
    python benchmarks/verifier_references.py --datasets math500 aime24 --workers 1

For each row, ``\\boxed{<answer>}`` must verify as correct against its own answer ("self-verified"),
and the boxed answer of a partner row must verify as wrong ("cross-rejected"), for two partners:
"next", the next row (cyclically) whose answer normalises to a different string (MATH answers repeat
a lot, and an identical answer is no test), and "similar", the row whose normalised answer is the
nearest different one in sorted order (``\\frac{1}{2}`` against ``\\frac{1}{3}``, ``(1,2]`` against
``(1,3]``): hard negatives. A partner the verifier still calls equal is a "collision": either a real
equality written differently (``\\frac12`` and ``0.5``) or a false positive; ``NOTES`` records which,
after inspection by hand. Every exception is listed with its reason.
The datasets' JSONL files are read from ``--data-dir`` (default ``$ASYMRL_DATA_DIR``).
Writes ``benchmarks/results/verifier_references.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from asymrl.reward import MathVerifier, extract_answer, normalize
from asymrl.reward.equivalence import parse_rational
from asymrl.reward.extract import HEDGE

DATA_DIR = Path(os.environ["ASYMRL_DATA_DIR"]) if os.environ.get("ASYMRL_DATA_DIR") else None
DATASETS = ("math_train", "math500", "aime24", "aime25", "amc23", "olympiadbench")
RESULT = Path(__file__).resolve().parent / "results" / "verifier_references.json"

# Exceptions inspected by hand, keyed by (dataset, id, kind). A real equality is not a verifier error.
NOTES: dict[tuple[str, str, str], str] = {
    ("olympiadbench", "2000", "cross-similar"): (
        "real equality: the problem asks for all n, a set, and {2,4,3} = {2,3,4}. (The reverse direction, "
        "problem 2382 asking for T(10), T(11), T(12) in order, would be a false positive: a bare comma list "
        "does not say whether its order matters, and the verifier reads it as a set.)"
    ),
}


def load_rows(dataset: str, data_dir: Path) -> list[dict]:
    """The rows of ``<data_dir>/<dataset>.jsonl`` as ``{"id", "answer"}``."""
    lines = (data_dir / f"{dataset}.jsonl").read_text().splitlines()
    return [{"id": str(row["id"]), "answer": str(row["answer"])} for row in map(json.loads, lines)]


def boxed(answer: str) -> str:
    """A minimal response whose final answer is ``answer``."""
    return f"The answer is $\\boxed{{{answer}}}$."


def next_partners(normalised: list[str]) -> list[int | None]:
    """For each row, the next row (cyclically) whose answer normalises to a different, non-empty string."""
    partners: list[int | None] = []
    for index, own in enumerate(normalised):
        candidates = ((index + step) % len(normalised) for step in range(1, len(normalised)))
        partners.append(next((other for other in candidates if normalised[other] not in ("", own)), None))
    return partners


def similar_partners(normalised: list[str]) -> list[int | None]:
    """For each row, a row whose normalised answer follows its own in sorted order (the one before,
    for the last): the most similar-looking different answer, a hard negative."""
    distinct = sorted(set(normalised) - {""})
    first_row = {}
    for index, value in enumerate(normalised):
        first_row.setdefault(value, index)
    position = {value: rank for rank, value in enumerate(distinct)}
    partners: list[int | None] = []
    for value in normalised:
        if not value or len(distinct) < 2:
            partners.append(None)
            continue
        rank = position[value]
        partners.append(first_row[distinct[rank + 1 if rank + 1 < len(distinct) else rank - 1]])
    return partners


def exception_reason(kind: str, dataset: str, row: dict, partner: dict | None, timed_out: bool) -> str:
    """Why a row failed, from the evidence: an empty reference, a timeout, two spellings of one
    number, an extraction problem, or the note written after inspecting it by hand."""
    if not row["answer"].strip():
        return "empty reference answer (a defect in the dataset itself)"
    if timed_out:
        return "timed out (scored 0)"
    note = NOTES.get((dataset, row["id"], kind))
    if note:
        return note
    if partner is not None:
        value = parse_rational(normalize(row["answer"]))
        if value is not None and value == parse_rational(normalize(partner["answer"])):
            return f"real equality: both are the number {value}"
    if kind == "self" and extract_answer(boxed(row["answer"]), or_is_list=bool(HEDGE.search(row["answer"]))) is None:
        return "extraction returns no answer for this boxed reference"
    return "not yet inspected"


def check_dataset(verifier: MathVerifier, dataset: str, rows: list[dict]) -> dict:
    """Self-verification and cross-rejection rates of one dataset, with every exception."""
    normalised = [normalize(row["answer"]) for row in rows]
    responses = [boxed(row["answer"]) for row in rows]
    started = time.monotonic()
    self_scores = verifier.score_batch(responses, [row["answer"] for row in rows])
    result = {"count": len(rows), "self_verified": int(sum(self_scores)), "self_verified_rate": sum(self_scores) / len(rows)}
    exceptions = [_exception(verifier, dataset, "self", rows[i], None) for i, score in enumerate(self_scores) if score != 1.0]
    for kind, partners in (("next", next_partners(normalised)), ("similar", similar_partners(normalised))):
        pairs = [(index, other) for index, other in enumerate(partners) if other is not None]
        scores = verifier.score_batch([responses[other] for _, other in pairs], [rows[index]["answer"] for index, _ in pairs])
        collisions = [_exception(verifier, dataset, f"cross-{kind}", rows[i], rows[o]) for (i, o), s in zip(pairs, scores) if s != 0.0]
        result[f"cross_{kind}"] = {
            "pairs": len(pairs),
            "rejected": len(pairs) - len(collisions),
            "rejected_rate": (len(pairs) - len(collisions)) / max(1, len(pairs)),
            "collisions": len(collisions),
            "real_equalities": sum(c["reason"].startswith("real equality") for c in collisions),
            "false_positives": sum(c["reason"].startswith("false positive") for c in collisions),
        }
        exceptions += collisions
    result["seconds"] = round(time.monotonic() - started, 2)
    result["exceptions"] = exceptions
    return result


def _exception(verifier: MathVerifier, dataset: str, kind: str, row: dict, partner: dict | None) -> dict:
    """One exception, re-scored alone to tell a timeout from a verdict."""
    response = boxed(row["answer"] if partner is None else partner["answer"])
    before = verifier.num_timeouts
    verifier.score_batch([response], [row["answer"]])
    timed_out = verifier.num_timeouts > before
    record = {"kind": kind, "id": row["id"], "answer": row["answer"]}
    if partner is not None:
        record.update(partner_id=partner["id"], partner_answer=partner["answer"])
    record["reason"] = exception_reason(kind, dataset, row, partner, timed_out)
    return record


def main() -> None:
    from common import provenance  # benchmarks/common.py, beside this script (imported here: tests load this file alone)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="folder of <dataset>.jsonl; default $ASYMRL_DATA_DIR")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=2.0, help="per-case limit, seconds (the trainer's default)")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    if args.data_dir is None:
        parser.error("--data-dir (or $ASYMRL_DATA_DIR): the folder holding the datasets' JSONL files")

    results = {}
    with MathVerifier(num_workers=args.workers, timeout_s=args.timeout) as verifier:
        for dataset in args.datasets:
            results[dataset] = check_dataset(verifier, dataset, load_rows(dataset, args.data_dir))
            summary = {k: v for k, v in results[dataset].items() if k != "exceptions"}
            print(dataset, json.dumps(summary), flush=True)
        timeouts = verifier.num_timeouts
    report = {
        "command": shlex.join(["python", *sys.argv]),
        "provenance": provenance(shlex.join(["python", *sys.argv])),
        "config": {"workers": args.workers, "timeout_s": args.timeout, "data_dir": str(args.data_dir),
                   "partners": {"next": "next row whose answer normalises to a different string",
                                "similar": "row with the next different normalised answer in sorted order"}},
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "timeouts": timeouts,
        "datasets": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
