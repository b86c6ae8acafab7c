"""Table 1 assembly from fixture results (no training)."""

from __future__ import annotations

import csv
import io

import pytest

from asymrl import table1


def test_paper_numbers_are_consistent_with_their_averages():
    assert len(table1.ROWS) == 15 and set(table1.PAPER_TABLE1) == {row for row, _ in table1.ROWS}
    for row, values in table1.PAPER_TABLE1.items():
        # The paper's Avg column is the plain mean of its five benchmarks (to rounding).
        assert sum(values) / 5 == pytest.approx(table1.PAPER_AVERAGES[row], abs=0.011), row


def fixture_results():
    return {
        "grpo": {b: (v + 1.0, 0.5) for b, v in zip(table1.BENCHMARKS, table1.PAPER_TABLE1["grpo"])},
        "asymgrpo": {"math500": (90.0, 1.2), "aime24": (30.0, None)},
    }


def test_assemble_differences_and_average():
    table = table1.assemble(fixture_results())
    assert list(table) == ["grpo", "asymgrpo"]  # the paper's row order
    assert table["grpo"]["math500"].difference == pytest.approx(1.0)
    assert table["grpo"]["avg"].mean == pytest.approx(56.50 + 1.0, abs=0.01)
    assert table["grpo"]["avg"].difference == pytest.approx(1.0, abs=0.01)
    # A partial row averages what it has and claims no paper average.
    assert table["asymgrpo"]["avg"].mean == pytest.approx(60.0) and table["asymgrpo"]["avg"].paper is None


def test_markdown_csv_latex():
    table = table1.assemble(fixture_results())
    markdown = table1.to_markdown(table)
    assert "| Method | MATH-500 | AIME24 | AIME25 | AMC23 | Olympiad | Avg |" in markdown
    assert "| GRPO | 89.20 ± 0.50 (+1.00) |" in markdown
    assert "| AsymGRPO | 90.00 ± 1.20 (+0.67) | 30.00 (-9.33) | — |" in markdown
    rows = list(csv.DictReader(io.StringIO(table1.to_csv(table))))
    math500 = next(r for r in rows if r["row"] == "asymgrpo" and r["benchmark"] == "math500")
    assert float(math500["paper"]) == 89.33 and float(math500["difference"]) == pytest.approx(0.67)
    latex = table1.to_latex(table)
    assert latex.startswith("\\begin{tabular}{lcccccc}") and "89.20$_{+1.00}$" in latex


def test_custom_benchmarks_for_small_scales():
    table = table1.assemble({"grpo": {"toy_val": (41.0, 1.0), "toy_test": (39.0, 1.0)}}, benchmarks=("toy_val", "toy_test"))
    assert table["grpo"]["avg"].mean == 40.0 and table["grpo"]["toy_val"].paper is None
    assert "| Method | toy_test | toy_val | Avg |" in table1.to_markdown(table)
