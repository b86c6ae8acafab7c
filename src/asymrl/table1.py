"""Table 1 of the paper: its rows, its numbers, and the assembly of a reproduced table.

The paper's numbers (Gu et al. 2026, arXiv 2604.04894, Table 1; docs/method.md sec. 8) are the
*target* of ``make reproduce-table1``; a reproduced table shows each measured cell with its
difference to the paper's. Assembly is pure (results in, Markdown / CSV / LaTeX out) so it is tested
on fixtures without training anything.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

from asymrl.metrics import all_summaries

BENCHMARKS: tuple[str, ...] = ("math500", "aime24", "aime25", "amc23", "olympiadbench")
BENCHMARK_TITLES = {"math500": "MATH-500", "aime24": "AIME24", "aime25": "AIME25", "amc23": "AMC23", "olympiadbench": "Olympiad",
                    "toy:test": "Toy test", "toy:validation": "Toy validation"}
# Avg@k of the paper's final evaluation: Avg@5 on MATH-500 and OlympiadBench, Avg@10 on AIME24/25 and AMC23.
AVG_AT_K = {"math500": 5, "aime24": 10, "aime25": 10, "amc23": 10, "olympiadbench": 5}

# (row id, title as printed in the paper). Row ids name the files in configs/table1/.
ROWS: tuple[tuple[str, str], ...] = (
    ("base", "Qwen3-4B"),
    ("reinforce", "REINFORCE"),
    ("grpo", "GRPO"),
    ("grpo_entropy_reg", "GRPO w/ Entropy reg."),
    ("grpo_clip_higher", "GRPO w/ Clip-higher"),
    ("grpo_entropy_adv", "GRPO w/ Entropy adv."),
    ("dr_grpo", "Dr.GRPO"),
    ("passk", "Pass@K training"),
    ("pos_only", "Pos-Only"),
    ("neg_only", "Neg-Only"),
    ("ent_increase", "EntIncrease"),
    ("ent_decrease", "EntDecrease"),
    ("asymgrpo_symmetric", "AsymGRPO (symmetric)"),
    ("asymgrpo", "AsymGRPO"),
    ("asymgrpo_clip_higher", "AsymGRPO w/ Clip-higher"),
)

# The paper's Table 1 (Qwen3-4B), in BENCHMARKS order (the Avg column is recomputed, and checked in tests).
PAPER_TABLE1: dict[str, tuple[float, ...]] = {
    "base": (81.60, 21.67, 20.00, 63.75, 47.52),
    "reinforce": (86.60, 28.67, 24.67, 73.75, 54.86),
    "grpo": (88.20, 31.00, 27.33, 78.25, 57.74),
    "grpo_entropy_reg": (88.20, 38.33, 28.33, 75.50, 57.24),
    "grpo_clip_higher": (90.07, 34.67, 32.33, 78.50, 58.18),
    "grpo_entropy_adv": (86.73, 32.00, 25.33, 77.25, 54.46),
    "dr_grpo": (88.87, 36.33, 30.00, 78.25, 57.24),
    "passk": (86.33, 27.67, 31.00, 74.00, 55.06),
    "pos_only": (87.13, 27.33, 28.00, 76.75, 57.34),
    "neg_only": (87.00, 26.00, 27.00, 78.00, 54.46),
    "ent_increase": (85.60, 26.00, 23.33, 71.75, 53.03),
    "ent_decrease": (83.73, 25.00, 23.67, 71.50, 50.74),
    "asymgrpo_symmetric": (88.53, 32.00, 29.33, 78.50, 57.34),
    "asymgrpo": (89.33, 39.33, 28.67, 81.00, 58.48),
    "asymgrpo_clip_higher": (89.73, 33.67, 36.00, 83.25, 58.93),
}
PAPER_AVERAGES = {
    "base": 46.91, "reinforce": 53.71, "grpo": 56.50, "grpo_entropy_reg": 57.52, "grpo_clip_higher": 58.75,
    "grpo_entropy_adv": 55.16, "dr_grpo": 58.14, "passk": 54.81, "pos_only": 55.31, "neg_only": 54.49,
    "ent_increase": 51.94, "ent_decrease": 50.93, "asymgrpo_symmetric": 57.14, "asymgrpo": 59.36,
    "asymgrpo_clip_higher": 60.32,
}


@dataclass
class Cell:
    """A measured accuracy in percent: mean over seeds (or samples) and its spread."""

    mean: float
    spread: float | None = None  # standard error, or the std over seeds
    paper: float | None = None

    @property
    def difference(self) -> float | None:
        return None if self.paper is None else self.mean - self.paper


def paper_cell(row: str, benchmark: str) -> float | None:
    if row not in PAPER_TABLE1 or benchmark not in BENCHMARKS:
        return None
    return PAPER_TABLE1[row][BENCHMARKS.index(benchmark)]


def assemble(results: dict[str, dict[str, tuple[float, float | None]]], benchmarks: tuple[str, ...] = BENCHMARKS) -> dict[str, dict[str, Cell]]:
    """``results[row][benchmark] = (mean %, spread)`` -> cells with the paper's numbers, plus an
    ``avg`` column (mean over the benchmarks present, when there are several). Rows keep the paper's order."""
    table: dict[str, dict[str, Cell]] = {}
    order = [row for row, _ in ROWS if row in results] + sorted(set(results) - {row for row, _ in ROWS})
    for row in order:
        cells = {b: Cell(*results[row][b], paper=paper_cell(row, b)) for b in benchmarks if b in results[row]}
        if len(cells) > 1:
            paper_avg = PAPER_AVERAGES.get(row) if set(cells) == set(BENCHMARKS) else None
            cells["avg"] = Cell(sum(c.mean for c in cells.values()) / len(cells), None, paper_avg)
        table[row] = cells
    return table


def _title(row: str, titles: dict[str, str] | None = None) -> str:
    return (titles or {}).get(row) or dict(ROWS).get(row, row)


def _columns(table: dict[str, dict[str, Cell]]) -> list[str]:
    present = {column for cells in table.values() for column in cells}
    ordered = [b for b in BENCHMARKS if b in present] + sorted(present - set(BENCHMARKS) - {"avg"})
    return ordered + (["avg"] if "avg" in present else [])


def _format(cell: Cell | None, with_paper: bool) -> str:
    if cell is None:
        return "—"
    text = f"{cell.mean:.2f}"
    if cell.spread is not None and not math.isnan(cell.spread):
        text += f" ± {cell.spread:.2f}"
    if with_paper and cell.difference is not None:
        text += f" ({cell.difference:+.2f})"
    return text


def to_markdown(table: dict[str, dict[str, Cell]], titles: dict[str, str] | None = None) -> str:
    """A Markdown table; each cell ``mean ± spread (difference to the paper)``."""
    columns = _columns(table)
    header = "| Method | " + " | ".join(BENCHMARK_TITLES.get(c, "Avg" if c == "avg" else c) for c in columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    for row, cells in table.items():
        lines.append(f"| {_title(row, titles)} | " + " | ".join(_format(cells.get(c), True) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def to_csv(table: dict[str, dict[str, Cell]], titles: dict[str, str] | None = None) -> str:
    """One line per (row, column): measured mean, spread, paper value, difference."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "method", "benchmark", "mean", "spread", "paper", "difference"])
    for row, cells in table.items():
        for column in _columns(table):
            cell = cells.get(column)
            if cell is not None:
                writer.writerow([row, _title(row, titles), column, f"{cell.mean:.4f}",
                                 "" if cell.spread is None else f"{cell.spread:.4f}",
                                 "" if cell.paper is None else f"{cell.paper:.2f}",
                                 "" if cell.difference is None else f"{cell.difference:.4f}"])
    return buffer.getvalue()


def to_latex(table: dict[str, dict[str, Cell]], titles: dict[str, str] | None = None) -> str:
    """A booktabs tabular; the paper's value as a small subscript difference."""
    columns = _columns(table)
    lines = [
        "\\begin{tabular}{l" + "c" * len(columns) + "}",
        "\\toprule",
        "Method & " + " & ".join(BENCHMARK_TITLES.get(c, "Avg" if c == "avg" else c) for c in columns) + " \\\\",
        "\\midrule",
    ]
    for row, cells in table.items():
        entries = []
        for column in columns:
            cell = cells.get(column)
            if cell is None:
                entries.append("--")
                continue
            entry = f"{cell.mean:.2f}"
            if cell.difference is not None:
                entry += f"$_{{{cell.difference:+.2f}}}$"
            entries.append(entry)
        lines.append(_title(row, titles).replace("&", "\\&") + " & " + " & ".join(entries) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


# -- a reproduced run's diagnostics and the paper's qualitative findings ------------------------

def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def mean_and_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None with fewer than two values) of a non-empty list."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def run_statistics(records: list[dict], final_steps: int = 10, extra: tuple = ()) -> dict[str, float | None]:
    """Summaries of one run's metrics.jsonl, one per ``Summary`` the registered diagnostics declare
    (``asymrl.metrics.all_summaries()``) and per ``extra`` one: a metric's mean over all training
    steps, or over the first or the last ``final_steps`` (the quantities the paper's qualitative
    findings talk about; first against last shows how far entropy collapsed)."""
    statistics = {}
    for summary in [*all_summaries(), *extra]:
        values = [r[summary.metric] for r in records if r.get(summary.metric) is not None and not math.isnan(r[summary.metric])]
        statistics[summary.name] = _mean(values[-final_steps:] if summary.final else values[:final_steps] if summary.first else values)
    return statistics


def difference_and_noise(a: list[float], b: list[float]) -> tuple[float, float | None]:
    """mean(a) - mean(b) and its standard error over seeds (None with fewer than two seeds on either side)."""
    (mean_a, std_a), (mean_b, std_b) = mean_and_std(a), mean_and_std(b)
    noise = None if std_a is None or std_b is None else math.sqrt(std_a**2 / len(a) + std_b**2 / len(b))
    return mean_a - mean_b, noise


def compare(a: list[float], b: list[float], direction: int) -> tuple[str, float, float | None]:
    """Is mean(a) - mean(b) of sign ``direction`` (+1 / -1), or about zero (``direction`` 0)?

    Returns (verdict, difference, noise) where noise is the standard error of the difference
    over seeds (None with fewer than two seeds on either side). A claimed sign "holds" when the
    difference exceeds twice the noise, and is "same sign, within noise" otherwise; "no change"
    holds when the difference is within twice the noise."""
    difference, noise = difference_and_noise(a, b)
    if direction == 0:
        if noise is None:
            return "inconclusive (one seed)", difference, noise
        return ("holds" if abs(difference) <= 2 * noise else "does not hold"), difference, noise
    if direction * difference <= 0:
        return "does not hold", difference, noise
    if noise is None:
        return "holds (one seed)", difference, noise
    return ("holds" if direction * difference > 2 * noise else "same sign, within noise"), difference, noise


# (claim, row a, row b, quantity, expected sign of a - b): the paper's qualitative findings (docs/method.md sec. 8).
FINDINGS: tuple[tuple[str, str, str, str, int], ...] = (
    ("Pos-Only keeps entropy above REINFORCE", "pos_only", "reinforce", "entropy_mean", +1),
    ("Pos-Only cuts the 'none solved' fraction (vs REINFORCE)", "pos_only", "reinforce", "none_solved_mean", -1),
    ("Neg-Only lowers entropy (vs GRPO)", "neg_only", "grpo", "entropy_mean", -1),
    ("Neg-Only raises the log-prob increment of correct rollouts (vs GRPO)", "neg_only", "grpo", "logp_increment_correct_mean", +1),
    ("EntIncrease trains worse than GRPO (test accuracy)", "ent_increase", "grpo", "score", -1),
    ("EntDecrease trains worse than GRPO (test accuracy)", "ent_decrease", "grpo", "score", -1),
    ("Entropy regularisation raises entropy (vs GRPO)", "grpo_entropy_reg", "grpo", "entropy_mean", +1),
    ("... without changing the 'all solved' fraction", "grpo_entropy_reg", "grpo", "all_solved_mean", 0),
    ("... nor the 'none solved' fraction", "grpo_entropy_reg", "grpo", "none_solved_mean", 0),
)


def qualitative_findings(results: dict, benchmark: str) -> list[dict]:
    """Check each of the paper's qualitative findings on reproduced results.

    ``results[row] = {"scores": {benchmark: [per-seed %]}, "diagnostics": [per-seed run_statistics]}``
    (as ``asymrl.reproduce.collect`` builds it)."""

    def values(row: str, quantity: str) -> list[float]:
        entry = results.get(row)
        if entry is None:
            return []
        if quantity == "score":
            return list(entry["scores"].get(benchmark, []))
        return [d[quantity] for d in entry["diagnostics"] if d.get(quantity) is not None]

    findings = []
    for claim, row_a, row_b, quantity, direction in FINDINGS:
        a, b = values(row_a, quantity), values(row_b, quantity)
        if not a or not b:
            findings.append({"claim": claim, "verdict": "not measured", "evidence": f"{row_a} or {row_b} missing"})
            continue
        verdict, difference, noise = compare(a, b, direction)
        evidence = (f"{quantity} {row_a} {sum(a) / len(a):.4g} vs {row_b} {sum(b) / len(b):.4g} "
                    f"(difference {difference:+.3g}" + (f", noise ±{noise:.2g})" if noise is not None else ")"))
        findings.append({"claim": claim, "verdict": verdict, "evidence": evidence, "difference": difference, "noise": noise})
    return findings
