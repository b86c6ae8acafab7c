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


def test_single_benchmark_has_no_average_column_and_titles_can_be_renamed():
    table = table1.assemble({"base": {"toy:test": (45.5, 1.2)}, "grpo": {"toy:test": (48.0, 0.5)}}, benchmarks=("toy:test",))
    assert "avg" not in table["base"]
    markdown = table1.to_markdown(table, {"base": "Base policy (toy:tiny)"})
    assert "| Method | Toy test |" in markdown and "| Base policy (toy:tiny) | 45.50 ± 1.20 |" in markdown
    assert "Qwen3-4B" not in markdown and "| GRPO | 48.00 ± 0.50 |" in markdown


def test_compare_verdicts():
    # Clear separation over seeds: the claimed sign holds; the noise is the standard error of the difference.
    verdict, difference, noise = table1.compare([0.30, 0.32], [0.20, 0.22], +1)
    assert verdict == "holds" and difference == pytest.approx(0.10) and noise == pytest.approx(0.02 ** 0.5 / 10)  # sqrt(1e-4 + 1e-4)
    assert table1.compare([0.30, 0.32], [0.20, 0.22], -1)[0] == "does not hold"
    assert table1.compare([0.21, 0.25], [0.20, 0.22], +1)[0] == "same sign, within noise"
    assert table1.compare([0.3], [0.2], +1)[0] == "holds (one seed)"
    assert table1.compare([0.21, 0.23], [0.20, 0.22], 0)[0] == "holds"      # 0.01 apart, noise 0.014
    assert table1.compare([0.40, 0.42], [0.20, 0.22], 0)[0] == "does not hold"
    assert table1.compare([0.4], [0.2], 0)[0] == "inconclusive (one seed)"


def test_run_statistics_from_metrics_records():
    records = [{"step": 0, "val/accuracy": 0.4}] + [
        {"step": s, "entropy/all": 0.1 * s, "groups/none_solved_frac": 0.5, "groups/all_solved_frac": 0.1,
         "logp_increment/correct": 0.01, "reward/accuracy": s / 20} for s in range(1, 21)
    ]
    stats = table1.run_statistics(records, final_steps=10)
    assert stats["entropy_mean"] == pytest.approx(0.1 * 10.5)
    assert stats["entropy_final"] == pytest.approx(0.1 * 15.5)      # steps 11..20
    assert stats["entropy_first"] == pytest.approx(0.1 * 5.5)       # steps 1..10
    assert stats["none_solved_mean"] == 0.5 and stats["all_solved_mean"] == pytest.approx(0.1)
    assert stats["reward_final"] == pytest.approx(15.5 / 20)
    assert table1.run_statistics([{"step": 0, "val/accuracy": 0.4}])["entropy_mean"] is None


def test_qualitative_findings_on_fixture_results():
    def entry(score, entropy, none_solved, all_solved=0.1, increment=0.01):
        diagnostics = [{"entropy_mean": entropy + d, "none_solved_mean": none_solved + d, "all_solved_mean": all_solved + d,
                        "logp_increment_correct_mean": increment + d} for d in (-0.001, 0.001)]
        return {"scores": {"toy:test": [score - 0.5, score + 0.5]}, "diagnostics": diagnostics}

    results = {
        "reinforce": entry(50, entropy=0.10, none_solved=0.40),
        "pos_only": entry(49, entropy=0.15, none_solved=0.30),     # higher entropy, fewer unsolved: holds
        "grpo": entry(55, entropy=0.12, none_solved=0.35),
        "neg_only": entry(53, entropy=0.14, none_solved=0.35),     # entropy up, not down: does not hold
        "ent_increase": entry(45, entropy=0.3, none_solved=0.5),
        "grpo_entropy_reg": entry(55, entropy=0.2, none_solved=0.35),
    }
    findings = {f["claim"]: f for f in table1.qualitative_findings(results, benchmark="toy:test")}
    assert findings["Pos-Only keeps entropy above REINFORCE"]["verdict"] == "holds"
    assert findings["Pos-Only cuts the 'none solved' fraction (vs REINFORCE)"]["verdict"] == "holds"
    assert findings["Neg-Only lowers entropy (vs GRPO)"]["verdict"] == "does not hold"
    assert findings["EntIncrease trains worse than GRPO (test accuracy)"]["verdict"] == "holds"
    assert findings["EntIncrease trains worse than GRPO (test accuracy)"]["difference"] == pytest.approx(-10)
    assert findings["EntDecrease trains worse than GRPO (test accuracy)"]["verdict"] == "not measured"
    assert findings["Entropy regularisation raises entropy (vs GRPO)"]["verdict"] == "holds"
    assert findings["... nor the 'none solved' fraction"]["verdict"] == "holds"
