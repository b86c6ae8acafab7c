"""Figures: what each plots, read back from the matplotlib figure its plot function writes (the
line data against the series computed here), and that the file written is a PNG."""

import pytest
import torch
from helpers import plotted

from asymrl import advantages, plots

PNG = b"\x89PNG\r\n\x1a\n"


def group_values(name: str, group_size: int, context: dict | None = None, **params) -> tuple[list, list]:
    """(p, advantage of a correct rollout) and (p, advantage of a wrong one) for every group of G with
    k correct, each group given to the estimator on its own (or, for an estimator that reads context,
    together as a batch, with ``context`` or channel_curves' stated default)."""
    pos, neg = ([], []), ([], [])
    if advantages.context_parameters(name):
        grid = advantages.accuracy_grid(group_size)
        given = {"batch_rewards": grid, "response_lengths": torch.ones_like(grid), "step": 0, "total_steps": 1, **(context or {})}
        table = advantages.compute(name, grid, **params, **{k: given[k] for k in advantages.context_parameters(name)})
    else:
        table = torch.cat([advantages.compute(name, advantages.accuracy_grid(group_size)[k:k + 1], **params)
                           for k in range(group_size + 1)])
    for k in range(group_size + 1):
        if k > 0:  # the first k rollouts of row k are the correct ones
            pos[0].append(k / group_size), pos[1].append(float(table[k, 0]))
        if k < group_size:
            neg[0].append(k / group_size), neg[1].append(float(table[k, -1]))
    return pos, neg


@pytest.mark.parametrize("zoo", [False, True])
def test_advantage_curves_figure_plots_every_estimators_curves(tmp_path, zoo):
    curves = plots.ZOO_CURVES if zoo else plots.CURVES
    figure = plots.advantage_curves_figure(8, curves)
    entries = [(c[0], c[1], c[2], c[3] if len(c) > 3 else None) for c in curves]
    panels = [axis for axis in figure.axes if axis.axison]
    assert [axis.get_title() for axis in panels] == [label for label, *_ in entries]
    grpo_pos, grpo_neg = group_values("grpo", 8)
    for axis, (label, name, params, context) in zip(panels, entries):
        pos, neg = group_values(name, 8, context(8) if context else None, **params)
        drawn = plotted(axis)
        assert drawn["$A^+$ (correct)"] == (pos[0], pytest.approx(pos[1], abs=1e-9)), label
        assert drawn["$A^-$ (wrong)"] == (neg[0], pytest.approx(neg[1], abs=1e-9)), label
        grey = [(list(line.get_xdata()), list(line.get_ydata())) for line in axis.get_lines() if line.get_linestyle() == "--"]
        assert grey == [(grpo_pos[0], pytest.approx(grpo_pos[1], abs=1e-9)), (grpo_neg[0], pytest.approx(grpo_neg[1], abs=1e-9))]
    names = {name for _, name, _ in plots.CURVES}
    assert {"reinforce", "grpo", "asymgrpo", "pos_only", "neg_only", "ent_decrease", "ent_increase", "dr_grpo", "passk"} <= names
    # The file is that figure written as a PNG; another group size draws another picture.
    out = plots.plot_advantage_curves(8, tmp_path / "curves.png", curves)
    assert out.read_bytes()[:8] == PNG
    assert plots.plot_advantage_curves(5, tmp_path / "g5.png", curves).read_bytes() != out.read_bytes()


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
    assert out.read_bytes()[:8] == PNG
    figure = plots.run_curves_figure([run])
    panels = {axis.get_title(): plotted(axis) for axis in figure.axes if axis.get_visible()}
    assert list(panels) == [title for title, _ in plots.RUN_PANELS]
    steps = [1, 2, 3, 4, 5, 6]
    assert panels["training reward"] == {"run": (steps, [0.5] * 6)}
    assert panels["token entropy"] == {"run all": (steps, [0.1] * 6), "run correct": (steps, [0.05] * 6), "run wrong": (steps, [0.2] * 6)}
    # Validation accuracy at the steps that logged it, and its EMA (0.6) by hand.
    points = [line for line in figure.axes[0].get_lines() if line.get_label().startswith("_")]
    assert [(list(line.get_xdata()), list(line.get_ydata())) for line in points] == [([0, 2, 4, 6], pytest.approx([0.4, 0.42, 0.44, 0.46]))]
    assert panels["validation accuracy (greedy)"]["run (EMA)"] == ([0, 2, 4, 6], pytest.approx([0.4, 0.408, 0.4208, 0.43648]))
    assert panels["mean ratio by channel (pos, neg)"] == {"run ratio_mean_pos": (steps, [1.01] * 6)}  # neg: never logged
    assert panels["token entropy by group accuracy p (mean over steps)"] == {"run": ([0.25, 0.75], pytest.approx([0.335, 0.1]))}
    # entropy by group accuracy: one point per p, the mean over the steps that logged it
    ps, means = plots._by_accuracy(lines, "entropy_by_p/")
    assert ps == [0.25, 0.75] and means == pytest.approx([0.335, 0.1])


def test_seed_bands_of_the_paper_groups(tmp_path):
    """Each row of a group is drawn as its seeds' mean (each seed smoothed first) with a band of one
    standard deviation across seeds."""
    import json
    import math

    def write(run, entropies: list[float]):
        run.mkdir(parents=True)
        run.joinpath("metrics.jsonl").write_text("".join(json.dumps({"step": s + 1, "entropy/all": e}) + "\n" for s, e in enumerate(entropies)))
        return run

    grpo = [write(tmp_path / "grpo0", [0.3, 0.2, 0.1]), write(tmp_path / "grpo1", [0.5, 0.4, 0.3])]
    records = [[json.loads(line) for line in (p / "metrics.jsonl").read_text().splitlines()] for p in grpo]
    steps, mean, std = plots.seed_band(records, "entropy/all", 0.5)
    # EMA 0.5 per seed: [0.3, 0.25, 0.175] and [0.5, 0.45, 0.375]; mean and sample std across the two.
    assert steps == [1, 2, 3] and mean == pytest.approx([0.4, 0.35, 0.275])
    assert std == pytest.approx([math.sqrt(2) * 0.1] * 3)
    figure = plots.paper_groups_figure({"grpo": grpo}, {"grpo": "GRPO"}, groups=(("g", ("grpo", "asymgrpo")),),
                                       metrics=(("entropy", "entropy/all", 0.5),))
    (axis,) = figure.axes
    assert plotted(axis) == {"GRPO (2 seeds)": ([1, 2, 3], pytest.approx([0.4, 0.35, 0.275]))}
    band = axis.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == pytest.approx(0.275 - math.sqrt(2) * 0.1) and band[:, 1].max() == pytest.approx(0.4 + math.sqrt(2) * 0.1)
