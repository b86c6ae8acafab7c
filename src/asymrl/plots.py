"""Figures: the advantage curves of every estimator (the paper's Fig. 1 panels, and the other
published estimators), and the training curves of one or more runs (the diagnostics Gu et al. 2026
plot: entropy, solved fractions, log-prob increment of correct rollouts, covariance by accuracy).

    python -m asymrl.plots advantage-curves --group-size 8 --out docs/advantage_curves.png
    python -m asymrl.plots advantage-curves --estimators zoo --group-size 8 --out docs/advantage_curves_zoo.png
    python -m asymrl.plots run-curves runs/collapse_asymgrpo [runs/other ...] --out docs/make_train_curves.png

Each ``plot_*`` function writes a PNG of the figure that its ``*_figure(s)`` function builds and
returns open (for reading its data back) without writing anything.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402

import torch  # noqa: E402

from asymrl import advantages  # noqa: E402

# (label, estimator, params): the Table 1 rows whose advantage depends on the group alone.
CURVES: list[tuple[str, str, dict]] = [
    ("REINFORCE", "reinforce", {}),
    ("GRPO (a=1/2)", "grpo", {}),
    ("GRPO, verl (Bessel std)", "grpo", {"std": "sample", "eps": 1e-6}),
    ("Pos-Only", "pos_only", {}),
    ("Neg-Only", "neg_only", {}),
    ("AsymGRPO (0.9, 0.4)", "asymgrpo", {"alpha_pos": 0.9, "alpha_neg": 0.4}),
    ("AsymGRPO sym. (0.65)", "asymgrpo", {"alpha_pos": 0.65, "alpha_neg": 0.65}),
    ("EntDecrease (flip +)", "ent_decrease", {}),
    ("EntIncrease (flip -)", "ent_increase", {}),
    ("Dr.GRPO", "dr_grpo", {}),
    ("Pass@K (k=4)", "passk", {"k": 4}),
]


def _lengths_wrong_twice(group_size: int) -> dict:
    grid = advantages.accuracy_grid(group_size)
    return {"response_lengths": torch.where(grid > 0.5, 1.0, 2.0)}


def _batch_of_accuracy(fraction: float) -> Callable[[int], dict]:
    """A stated batch: one group with round(fraction G) of its G rollouts correct."""
    def context(group_size: int) -> dict:
        correct = round(fraction * group_size)
        return {"batch_rewards": advantages.accuracy_grid(group_size)[correct:correct + 1]}
    return context


# (label, estimator, params, context(G) -> dict or None): the other published estimators. Context
# left out is channel_curves' stated default: the batch is one group at every accuracy k = 0..G.
ZOO_CURVES: list[tuple[str, str, dict, Callable[[int], dict] | None]] = [
    ("RLOO", "rloo", {}, None),
    ("REINFORCE++-baseline*", "reinforce_pp_baseline", {}, None),
    ("GPG*", "gpg", {}, None),
    ("PSR", "psr", {}, None),
    ("NSR", "nsr", {}, None),
    ("W-REINFORCE (lam = 0.1)", "w_reinforce", {}, None),
    ("QAE (K = 0.4)", "qae", {}, None),
    ("QAE (K = 0.6)", "qae", {"quantile_k": 0.6}, None),
    ("AsymRE (dV = -0.1)", "asymre", {}, None),
    ("A-GRAE, batch acc. 1/4", "a_grae", {}, _batch_of_accuracy(0.25)),
    ("A-GRAE, batch acc. 1/2", "a_grae", {}, _batch_of_accuracy(0.5)),
    ("A-GRAE, batch acc. 3/4", "a_grae", {}, _batch_of_accuracy(0.75)),
    ("OPO, equal lengths", "opo", {}, None),
    ("OPO, wrong 2x longer", "opo", {}, _lengths_wrong_twice),
]

ZOO_NOTE = ("* batch-coupled: the batch is one group at every accuracy k = 0..G (batch accuracy 1/2). "
            "A-GRAE: a batch of stated accuracy. OPO: stated response lengths. Panels have their own y scales.")


def _save(figure, out: Path, dpi: int) -> Path:
    """Write ``figure`` to ``out`` (its folder created) and close it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=dpi)
    plt.close(figure)
    return out


def plot_advantage_curves(group_size: int, out: Path, curves: list | None = None) -> Path:
    """``advantage_curves_figure`` written to ``out``."""
    return _save(advantage_curves_figure(group_size, curves), out, dpi=120)


def advantage_curves_figure(group_size: int, curves: list | None = None):
    """One panel per estimator: A+(p) of correct and A-(p) of wrong rollouts on the grid p = k/G,
    with GRPO's curve in grey for reference. ``curves``: ``CURVES`` (Table 1's estimators, the
    default, one shared y scale) or ``ZOO_CURVES`` (the other published ones, a y scale per panel)."""
    zoo = curves is not None and curves is not CURVES
    entries = [(c[0], c[1], c[2], c[3] if len(c) > 3 else None) for c in (curves or CURVES)]
    entries = [c for c in entries if group_size >= 3 or not c[1].startswith("ent_")]
    columns = 5 if zoo else 4
    rows = -(-len(entries) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.9 * rows + (0.4 if zoo else 0)),
                                sharex=True, sharey=not zoo, squeeze=False)
    grid = [k / group_size for k in range(group_size + 1)]
    reference = advantages.channel_curves("grpo", group_size)

    def draw(axis, values, **style):
        points = [(p, a) for p, a in zip(grid, values) if a is not None]
        axis.plot([p for p, _ in points], [a for _, a in points], marker="o", markersize=3, **style)

    for axis, (label, name, params, context) in zip(axes.flat, entries):
        pos, neg = advantages.channel_curves(name, group_size, context=context(group_size) if context else None, **params)
        for values in reference:
            draw(axis, values, color="0.75", linestyle="--", linewidth=1)
        draw(axis, pos, color="tab:green", linewidth=1.6, label="$A^+$ (correct)")
        draw(axis, neg, color="tab:red", linewidth=1.6, label="$A^-$ (wrong)")
        axis.axhline(0.0, color="grey", linewidth=0.6)
        axis.set_title(label, fontsize=10)
        axis.grid(alpha=0.3)
    for axis in axes.flat[len(entries):]:
        axis.axis("off")
    for axis in axes.flat[len(entries) - columns:len(entries)] if len(entries) > columns else axes[-1]:
        axis.set_xlabel("group accuracy p = k / G")  # the lowest panel of each column
        axis.xaxis.set_tick_params(labelbottom=True)
    for axis in axes[:, 0]:
        axis.set_ylabel("advantage")
    axes.flat[0].legend(fontsize=8, loc="upper right")
    title = "Other published estimators" if zoo else "Advantage curves"
    figure.suptitle(f"{title} at G = {group_size} (grey dashed: GRPO)", fontsize=12)
    if zoo:
        figure.text(0.5, 0.005, ZOO_NOTE, ha="center", va="bottom", fontsize=8)
        figure.tight_layout(rect=(0, 0.03, 1, 1))
    else:
        figure.tight_layout()
    return figure


def ema(values: list[float], smoothing: float = 0.6) -> list[float]:
    """Exponential moving average, as the paper smooths validation accuracy."""
    out, state = [], None
    for value in values:
        state = value if state is None else smoothing * state + (1 - smoothing) * value
        out.append(state)
    return out


RUN_PANELS = [
    ("validation accuracy (greedy)", ["val/accuracy"]),
    ("training reward", ["reward/accuracy"]),
    ("token entropy", ["entropy/all", "entropy/correct", "entropy/wrong"]),
    ("group outcomes", ["groups/all_solved_frac", "groups/none_solved_frac"]),
    ("log-prob increment of correct rollouts", ["logp_increment/correct"]),
    ("response length", ["response/length_mean"]),
    ("mean ratio by channel (pos, neg)", ["actor/sign/ratio_mean_pos", "actor/sign/ratio_mean_neg"]),
    ("clip fraction by channel (pos, neg)", ["actor/sign/clip_frac_pos", "actor/sign/clip_frac_neg"]),
    ("gradient: share of positive rollouts, cosine pos/neg", ["actor/sign/grad_share_pos", "actor/sign/grad_cos"]),
    ("token entropy by group accuracy p (mean over steps)", ["entropy_by_p/"]),  # x: p, not the step
]


def _by_accuracy(records: list[dict], prefix: str) -> tuple[list[float], list[float]]:
    """(p, mean over the steps that logged it) of the metrics ``<prefix>p=...``."""
    values: dict[float, list[float]] = {}
    for record in records:
        for key, value in record.items():
            if key.startswith(prefix + "p="):
                values.setdefault(float(key.split("=", 1)[1]), []).append(value)
    ps = sorted(values)
    return ps, [sum(values[p]) / len(values[p]) for p in ps]


def plot_run_curves(run_dirs: list[Path], out: Path) -> Path:
    """``run_curves_figure`` written to ``out``."""
    return _save(run_curves_figure(run_dirs), out, dpi=110)


def run_curves_figure(run_dirs: list[Path]):
    """One panel per diagnostic, one colour per run; validation accuracy with its EMA."""
    from asymrl.metrics import read_metrics

    rows = -(-len(RUN_PANELS) // 3)
    figure, axes = plt.subplots(rows, 3, figsize=(15, 3.7 * rows))
    for axis in axes.flat[len(RUN_PANELS):]:
        axis.set_visible(False)
    colours = plt.get_cmap("tab10").colors
    for run_index, run_dir in enumerate(run_dirs):
        records = read_metrics(Path(run_dir) / "metrics.jsonl")
        colour = colours[run_index % len(colours)]
        for axis, (title, keys) in zip(axes.flat, RUN_PANELS):
            if keys[0].endswith("/"):
                ps, means = _by_accuracy(records, keys[0])
                axis.plot(ps, means, "o-", color=colour, markersize=3, linewidth=1.2, label=Path(run_dir).name)
                axis.set_title(title, fontsize=10)
                axis.set_xlabel("group accuracy p")
                axis.grid(alpha=0.3)
                continue
            for key_index, key in enumerate(keys):
                points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
                if not points:
                    continue
                steps, values = zip(*points)
                style = ["-", "--", ":"][key_index]
                label = f"{Path(run_dir).name}" + (f" {key.split('/')[-1]}" if len(keys) > 1 else "")
                if key == "val/accuracy":
                    axis.plot(steps, values, "o", color=colour, markersize=3, alpha=0.4)
                    axis.plot(steps, ema(list(values)), style, color=colour, label=f"{label} (EMA)")
                else:
                    axis.plot(steps, values, style, color=colour, linewidth=1.2, label=label)
            axis.set_title(title, fontsize=10)
            axis.set_xlabel("step")
            axis.grid(alpha=0.3)
    for axis in axes.flat:
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def _seed_mean_series(runs_records: list[list[dict]], key: str) -> tuple[list[int], list[float]]:
    """(steps, mean over runs) of one metric, on the steps every run logged."""
    per_run = [{r["step"]: r[key] for r in records if r.get(key) is not None} for records in runs_records]
    steps = sorted(set.intersection(*(set(series) for series in per_run))) if per_run else []
    return steps, [sum(series[s] for series in per_run) / len(per_run) for s in steps]


# The paper's figures (Gu et al. 2026): file name -> (title, metric keys, smoothing).
TABLE1_FIGURES = {
    "entropy": ("mean token entropy of the rollouts", ["entropy/all"], 0.6),
    "validation_accuracy": ("validation accuracy, greedy (EMA 0.6)", ["val/accuracy"], 0.6),
    "solved_fractions": ("groups all solved (p = 1) and none solved (p = 0), EMA 0.8",
                         ["groups/all_solved_frac", "groups/none_solved_frac"], 0.8),
    "logp_increment": ("log-prob increment of correct rollouts per update (EMA 0.8)", ["logp_increment/correct"], 0.8),
}


# The paper's mechanism figures: which rows are drawn together (Gu et al. 2026, Figs. 2-4), and the
# metrics drawn for each group (title, key, EMA smoothing).
PAPER_GROUPS = (
    ("one channel modulated (Fig. 2)", ("reinforce", "pos_only", "neg_only")),
    ("flipped curves (Fig. 3)", ("grpo", "ent_increase", "ent_decrease")),
    ("AsymGRPO (Fig. 4)", ("grpo", "asymgrpo", "asymgrpo_clip_higher", "grpo_clip_higher")),
)
BAND_METRICS = (
    ("token entropy", "entropy/all", 0.6),
    ("all solved (p = 1)", "groups/all_solved_frac", 0.8),
    ("none solved (p = 0)", "groups/none_solved_frac", 0.8),
    ("log-prob increment of correct rollouts", "logp_increment/correct", 0.8),
)


def seed_band(runs_records: list[list[dict]], key: str, smoothing: float) -> tuple[list[int], list[float], list[float]]:
    """(steps, mean over seeds, standard deviation over seeds) of a metric smoothed per seed (EMA), on
    the steps every seed logged; the deviation is 0 with one seed."""
    per_run = [{r["step"]: r[key] for r in records if r.get(key) is not None} for records in runs_records]
    steps = sorted(set.intersection(*(set(series) for series in per_run))) if per_run else []
    smoothed = torch.tensor([ema([series[s] for s in steps], smoothing) for series in per_run], dtype=torch.float64)
    if not steps:
        return [], [], []
    std = smoothed.std(dim=0, correction=1) if len(per_run) > 1 else torch.zeros(len(steps), dtype=torch.float64)
    return steps, smoothed.mean(dim=0).tolist(), std.tolist()


def paper_groups_figure(runs: dict[str, list[Path]], titles: dict[str, str], groups=PAPER_GROUPS, metrics=BAND_METRICS):
    """One panel per (metric, group of rows): each row's mean over its seeds with a band of one
    standard deviation across seeds, each seed smoothed first (the paper's Figs. 2-4, with spread)."""
    from asymrl.metrics import read_metrics

    records = {row: [read_metrics(Path(run_dir) / "metrics.jsonl") for run_dir in dirs] for row, dirs in runs.items()}
    colours = plt.get_cmap("tab10").colors
    figure, axes = plt.subplots(len(metrics), len(groups), figsize=(5.5 * len(groups), 3.2 * len(metrics)), squeeze=False)
    for column, (group_title, rows) in enumerate(groups):
        for line, (metric_title, key, smoothing) in enumerate(metrics):
            axis = axes[line][column]
            for index, row in enumerate(r for r in rows if r in records):
                steps, mean, std = seed_band(records[row], key, smoothing)
                if not steps:
                    continue
                colour = colours[index % len(colours)]
                axis.plot(steps, mean, color=colour, linewidth=1.3, label=f"{titles.get(row, row)} ({len(records[row])} seeds)")
                axis.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], color=colour, alpha=0.2)
            axis.set_title(f"{group_title}: {metric_title}", fontsize=9)
            axis.grid(alpha=0.3)
            if line == len(metrics) - 1:
                axis.set_xlabel("RL step")
            if line == 0:
                axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def plot_paper_groups(runs: dict[str, list[Path]], out: Path, titles: dict[str, str], groups=PAPER_GROUPS, metrics=BAND_METRICS) -> Path:
    """``paper_groups_figure`` written to ``out``."""
    return _save(paper_groups_figure(runs, titles, groups, metrics), out, dpi=100)


def plot_sweep_curves(by_setting: dict[str, list[dict]], out: Path) -> Path:
    """The collapse sweep's curves (``asymrl.sweep``): entropy, training accuracy and greedy validation
    accuracy of every setting, the mean over its seeds (``regime.json``'s ``curves`` and ``validation``)."""
    figure, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    colours = plt.get_cmap("tab10").colors
    for index, (setting, runs) in enumerate(by_setting.items()):
        for axis, per_seed in zip(axes, ([run["curves"]["entropy/all"] for run in runs], [run["curves"]["reward/accuracy"] for run in runs],
                                         [run["validation"] for run in runs])):
            length = min(map(len, per_seed))
            mean = [sum(curve[i][1] for curve in per_seed) / len(per_seed) for i in range(length)]
            axis.plot([step for step, _ in per_seed[0][:length]], mean, color=colours[index % len(colours)], linewidth=1.2,
                      label=f"{setting} ({len(runs)} seeds)")
    for axis, title in zip(axes, ("token entropy (10-step means)", "training accuracy (10-step means)", "validation accuracy, greedy")):
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("RL step")
        axis.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return _save(figure, out, dpi=100)


def plot_table1_figures(runs: dict[str, list[Path]], out_dir: Path, titles: dict[str, str] | None = None,
                        covariance_steps: int = 40, rows: tuple[tuple[str, str], ...] | None = None,
                        figures: dict | None = None) -> list[Path]:
    """``table1_figures`` written to ``out_dir/<name>.png``; their paths, in that order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    built = table1_figures(runs, titles, covariance_steps, rows, figures)
    return [_save(figure, out_dir / f"{name}.png", dpi=110) for name, figure in built.items()]


def table1_figures(runs: dict[str, list[Path]], titles: dict[str, str] | None = None, covariance_steps: int = 40,
                   rows: tuple[tuple[str, str], ...] | None = None, figures: dict | None = None) -> dict:
    """File name (without ``.png``) -> figure: the paper's figures over the Table 1 rows (or ``rows``, (id, title) pairs in colour order):
    one line per row (the mean over its seeds) for entropy, validation accuracy, solved fractions and
    log-prob increment (or ``figures``, as ``TABLE1_FIGURES``), and the covariance between mean token
    log-prob and advantage by group accuracy (over the first ``covariance_steps`` steps, as appendix B)."""
    from asymrl.metrics import read_metrics
    from asymrl.table1 import ROWS

    rows = rows or ROWS
    titles = {**dict(rows), **(titles or {})}
    # Each run's metrics.jsonl, read once: row -> one list of records per seed.
    records = {row: [read_metrics(Path(run_dir) / "metrics.jsonl") for run_dir in dirs] for row, dirs in runs.items()}
    trained = {row: seeds for row, seeds in records.items() if _seed_mean_series(seeds, "entropy/all")[0]}
    colours = plt.get_cmap("tab20").colors
    colour_of = {row: colours[i % len(colours)] for i, (row, _) in enumerate(rows)}
    built = {}
    for name, (title, keys, smoothing) in (figures or TABLE1_FIGURES).items():
        figure, axes = plt.subplots(1, len(keys), figsize=(7.5 * len(keys) + 2.5, 5), squeeze=False)
        for axis, key in zip(axes[0], keys):
            for row, seeds in (records if key == "val/accuracy" else trained).items():
                steps, values = _seed_mean_series(seeds, key)
                if steps:
                    axis.plot(steps, ema(values, smoothing), color=colour_of.get(row, "black"), linewidth=1.3,
                              label=titles.get(row, row), linestyle="--" if row.startswith("ent_") else "-")
            if len(keys) > 1:
                axis.set_title(key, fontsize=10)
            axis.set_xlabel("RL step")
            axis.grid(alpha=0.3)
        figure.suptitle(title)
        axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        figure.tight_layout()
        built[name] = figure

    figure, axis = plt.subplots(figsize=(10, 5))
    for row, seeds in trained.items():
        early = [record for seed_records in seeds for record in seed_records if record.get("step", 0) <= covariance_steps]
        ps, means = _by_accuracy(early, "cov/")
        if ps:
            axis.plot(ps, means, marker="o", color=colour_of.get(row, "black"),
                      markersize=3, linewidth=1.2, label=titles.get(row, row), linestyle="--" if row.startswith("ent_") else "-")
    axis.axhline(0, color="grey", linewidth=0.8)
    axis.set_xlabel("group accuracy p")
    axis.set_ylabel("Cov(mean token log-prob, advantage)")
    axis.set_title(f"covariance by accuracy, mean over the first {covariance_steps} steps (appendix B)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    built["covariance_by_accuracy"] = figure
    return built


def pass_at_k_means(curves: list[dict[str, float]]) -> tuple[list[int], list[float], list[float]]:
    """``k``, the mean pass@k over seeds and its seed standard deviation (0 with one seed), for the k
    every seed's curve has; ``curves`` are evaluate's ``pass_at_k`` mappings (k as text -> fraction)."""
    from asymrl.table1 import mean_and_std

    ks = sorted(set.intersection(*(set(map(int, curve)) for curve in curves))) if curves else []
    stats = [mean_and_std([curve[str(k)] for curve in curves]) for k in ks]
    return ks, [mean for mean, _ in stats], [std or 0.0 for _, std in stats]


def plot_pass_at_k_by_row(curves: dict[str, list[dict[str, float]]], out: Path, titles: dict[str, str] | None = None,
                          base_row: str = "base", wide: dict[str, dict[str, float]] | None = None,
                          rows: tuple[tuple[str, str], ...] | None = None) -> Path:
    """``pass_at_k_figure`` written to ``out``."""
    return _save(pass_at_k_figure(curves, titles, base_row, wide, rows), out, dpi=110)


def pass_at_k_figure(curves: dict[str, list[dict[str, float]]], titles: dict[str, str] | None = None,
                     base_row: str = "base", wide: dict[str, dict[str, float]] | None = None,
                     rows: tuple[tuple[str, str], ...] | None = None):
    """One panel per trained row: its pass@k curve after training (mean over seeds, a band of one seed
    standard deviation) over the base policy's, on a log2 k axis; ``wide`` adds one seed's curve to a
    larger k (from more samples on fewer problems), the base's dashed beside it. Above the base at
    large k, RL widened the solvable set; converging to or below it, RL sharpened what was already
    solvable (Yue et al. 2025). Panels in the order of ``rows`` ((id, title) pairs; Table 1's by default)."""
    from asymrl.table1 import ROWS

    rows = rows or ROWS
    titles = {**dict(rows), **(titles or {})}
    panels = [row for row, _ in rows if row in curves and row != base_row] + sorted(set(curves) - {r for r, _ in rows} - {base_row})
    columns = max(1, min(5, len(panels)))
    lines = max(1, -(-len(panels) // columns))
    figure, axes = plt.subplots(lines, columns, figsize=(3.2 * columns, 2.8 * lines), squeeze=False, sharex=True, sharey=True)
    base = pass_at_k_means(curves[base_row]) if base_row in curves else None
    wide = wide or {}
    for axis, row in zip(axes.flat, panels):
        if base is not None:
            axis.plot(base[0], base[1], color="grey", linestyle="--", marker=".", label=titles.get(base_row, base_row))
        if row in wide and base_row in wide:
            for name, colour, label in ((base_row, "grey", None), (row, "tab:orange", "after RL, one seed, more samples")):
                ks, means, _ = pass_at_k_means([wide[name]])
                axis.plot(ks, means, color=colour, linestyle=":" if name == base_row else "-", linewidth=1, label=label)
        ks, means, stds = pass_at_k_means(curves[row])
        axis.plot(ks, means, color="tab:blue", marker="o", markersize=3, label="after RL")
        axis.fill_between(ks, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)], color="tab:blue", alpha=0.2)
        axis.set_xscale("log", base=2)
        axis.set_title(titles.get(row, row), fontsize=9)
        axis.grid(alpha=0.3)
    for axis in axes.flat[len(panels):]:
        axis.set_visible(False)
    for axis in axes[:, 0]:
        axis.set_ylabel("pass@k")
    for axis in axes[-1]:
        axis.set_xlabel("k")
    axes.flat[0].legend(fontsize=7)
    figure.suptitle("pass@k before (base policy, dashed) and after RL, mean over seeds ± one std")
    figure.tight_layout()
    return figure


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m asymrl.plots", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    curves = commands.add_parser("advantage-curves", help="A+(p) and A-(p) of every estimator")
    curves.add_argument("--group-size", type=int, default=8)
    curves.add_argument("--estimators", choices=["table1", "zoo"], default="table1",
                        help="table1: the paper's estimators; zoo: the other published ones (RLOO, QAE, ...)")
    curves.add_argument("--out", type=Path, default=None,
                        help="default docs/advantage_curves.png (table1) or docs/advantage_curves_zoo.png (zoo)")
    runs = commands.add_parser("run-curves", help="the paper's diagnostics over training, for one or more runs")
    runs.add_argument("run_dirs", nargs="+", type=Path)
    runs.add_argument("--out", type=Path, default=Path("docs/training_curves.png"))
    args = parser.parse_args(argv)
    if args.command == "advantage-curves":
        zoo = args.estimators == "zoo"
        out = args.out or Path("docs/advantage_curves_zoo.png" if zoo else "docs/advantage_curves.png")
        print(f"wrote {plot_advantage_curves(args.group_size, out, curves=ZOO_CURVES if zoo else None)}")
    else:
        print(f"wrote {plot_run_curves(args.run_dirs, args.out)}")


if __name__ == "__main__":
    main()
