"""pass@k: the unbiased estimator against brute force over subsets, pass@1's sampling standard error
against its formula and against repeated evaluations, and the evaluation CLI's pass@k mode on the
tiny base policy."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from asymrl.evaluate import main, parse_args
from asymrl.pass_at_k import k_values, pass_at_1_sampling_se, pass_at_k, pass_at_k_curve


@pytest.mark.parametrize("n", [1, 4, 7])
def test_unbiased_estimator_equals_the_mean_over_all_k_subsets(n):
    for correct_count in range(n + 1):
        row = torch.tensor([[1.0] * correct_count + [0.0] * (n - correct_count)])
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            brute = sum(any(row[0, i] > 0.5 for i in subset) for subset in subsets) / len(subsets)
            assert float(pass_at_k(row, k)) == pytest.approx(brute, abs=1e-12), (n, correct_count, k)


def test_curve_ks_and_bad_k():
    assert k_values(64) == [1, 2, 4, 8, 16, 32, 64] and k_values(6) == [1, 2, 4, 6] and k_values(1) == [1]
    correct = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]])
    # pass@2 per problem: 1 - C(3,2)/C(4,2) = 0.5, 0, 1 - C(2,2)/C(4,2) = 5/6.
    assert pass_at_k_curve(correct) == pytest.approx({1: (0.25 + 0 + 0.5) / 3, 2: (0.5 + 0 + 5 / 6) / 3, 4: 2 / 3})
    with pytest.raises(ValueError, match="1 <= k <= n = 4"):
        pass_at_k(correct, 5)


def test_pass_at_1_sampling_se_formula_and_one_sample():
    correct = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]])
    # c = 1, 0, 2 of n = 4: sum c (n - c) = 3 + 0 + 4 = 7, over n^2 (n - 1) N^2 = 16 * 3 * 9
    assert pass_at_1_sampling_se(correct) == pytest.approx((7 / 432) ** 0.5, rel=1e-12)
    assert pass_at_1_sampling_se(torch.ones(5, 4)) == 0.0  # every sample correct: nothing left to sampling
    assert pass_at_1_sampling_se(torch.ones(5, 1)) is None


def test_pass_at_1_sampling_se_is_the_spread_of_repeated_evaluations():
    """The same 40 problems (fixed solve rates) evaluated 4,000 times with 4 samples each: the
    spread of pass@1 over those evaluations is what each one's estimate says it is."""
    generator = torch.Generator().manual_seed(0)
    rates = torch.linspace(0.0, 1.0, 40)
    evaluations = torch.bernoulli(rates.expand(4000, 4, 40).transpose(1, 2), generator=generator)  # (evaluations, problems, n)
    spread = float(evaluations.mean(dim=(1, 2)).std())
    estimates = torch.tensor([pass_at_1_sampling_se(one) for one in evaluations])
    exact = float((rates * (1 - rates)).sum() / (4 * 40 * 40)) ** 0.5
    assert float(estimates.pow(2).mean()) ** 0.5 == pytest.approx(exact, rel=0.02)  # unbiased in the variance
    assert spread == pytest.approx(exact, rel=0.05)  # 4,000 evaluations: the sd itself is known to ~1%


def test_pass_at_k_mode_of_the_evaluation_cli(tmp_path):
    out = tmp_path / "eval"
    summary = main(["--checkpoint", "toy:tiny", "--data", "toy", "--split", "validation", "--n", "12", "--limit", "10",
                    "--max-new-tokens", "64", "--backend", "transformers", "--dtype", "float32", "--device", "cpu",
                    "--prompt-template", "{problem}", "--out", str(out)])
    assert summary["temperature"] == 1.0  # pass@k mode samples the policy's own distribution by default
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and all(len(row["correct"]) == 12 for row in rows)
    assert len({row["id"] for row in rows}) == 10
    correct = torch.tensor([row["correct"] for row in rows])
    written = json.loads((out / "summary.json").read_text())
    assert list(written["pass_at_k"]) == ["1", "2", "4", "8", "12"]
    for k, value in written["pass_at_k"].items():
        assert value == pytest.approx(float(pass_at_k(correct, int(k)).mean()))
    assert written["pass_at_1_sampling_se"] == pytest.approx(pass_at_1_sampling_se(correct)) and written["pass_at_1_sampling_se"] > 0
    values = list(written["pass_at_k"].values())
    assert values == sorted(values) and 0 < values[0] < 1  # pass@k grows with k; the policy solves some, not all
    solved_in_8 = (correct[:, :8] > 0.5).sum(dim=1)
    groups = written["groups"]
    assert groups["group_size"] == 8
    assert groups["none_solved"] == pytest.approx(float((solved_in_8 == 0).float().mean()))
    assert groups["all_solved"] == pytest.approx(float((solved_in_8 == 8).float().mean()))
    assert groups["mixed"] + groups["none_solved"] + groups["all_solved"] == pytest.approx(1.0)
    assert 1 <= groups["distinct_correct"] <= 8


def test_pass_at_k_arguments_are_checked():
    with pytest.raises(SystemExit):
        parse_args(["--checkpoint", "toy:tiny", "--data", "toy"])  # no --out for a toy policy
    with pytest.raises(SystemExit):
        parse_args(["--checkpoint", "x", "--data", "toy", "--n", "0"])
    assert parse_args(["--checkpoint", "x", "--data", "toy", "--temperature", "0.7"]).temperature == 0.7
    assert parse_args(["--checkpoint", "x"]).temperature == 0.4  # Avg@k keeps the paper's
