"""The advantage-curve figure is drawn for every estimator."""

import pytest

from asymrl import plots


def test_advantage_curves_figure(tmp_path):
    out = plots.plot_advantage_curves(8, tmp_path / "curves.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    names = {name for _, name, _ in plots.CURVES}
    assert {"reinforce", "grpo", "asymgrpo", "pos_only", "neg_only", "ent_decrease", "ent_increase", "dr_grpo", "passk"} <= names


def test_ema_and_run_curves(tmp_path):
    import json

    assert plots.ema([1.0, 0.0, 0.0], smoothing=0.5) == [1.0, 0.5, 0.25]
    run = tmp_path / "run"
    run.mkdir()
    lines = [{"step": 0, "val/accuracy": 0.4}] + [
        {"step": s, "reward/accuracy": 0.5, "entropy/all": 0.1, "entropy/correct": 0.05, "entropy/wrong": 0.2,
         "groups/all_solved_frac": 0.2, "groups/none_solved_frac": 0.3, "logp_increment/correct": 0.01,
         "response/length_mean": 30.0, "actor/sign/ratio_mean_pos": 1.01, "actor/sign/clip_frac_neg": 0.02,
         "entropy_by_p/p=0.250": 0.3 + s / 100, "entropy_by_p/p=0.750": 0.1, **({"val/accuracy": 0.4 + s / 100} if s % 2 == 0 else {})}
        for s in range(1, 7)
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = plots.plot_run_curves([run], tmp_path / "curves.png")
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 20_000
    # entropy by group accuracy: one point per p, the mean over the steps that logged it
    ps, means = plots._by_accuracy(lines, "entropy_by_p/")
    assert ps == [0.25, 0.75] and means == pytest.approx([0.335, 0.1])
