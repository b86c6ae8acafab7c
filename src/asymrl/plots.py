"""Figures: the advantage curves of every estimator (the paper's Fig. 1 panels), and the training
curves of one or more runs (the paper's diagnostics, PAPER.md section 6).

    python -m asymrl.plots advantage-curves --group-size 8 --out docs/advantage_curves.png
    python -m asymrl.plots run-curves runs/toy_asymgrpo [runs/other ...] --out docs/toy_training.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402

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


def plot_advantage_curves(group_size: int, out: Path) -> Path:
    """One panel per estimator: A+(p) of correct and A-(p) of wrong rollouts on the grid p = k/G,
    with GRPO's curve in grey for reference."""
    curves = [c for c in CURVES if group_size >= 3 or not c[1].startswith("ent_")]
    columns = 4
    rows = -(-len(curves) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.9 * rows), sharex=True, sharey=True)
    grid = [k / group_size for k in range(group_size + 1)]
    reference = advantages.channel_curves("grpo", group_size)

    def draw(axis, values, **style):
        points = [(p, a) for p, a in zip(grid, values) if a is not None]
        axis.plot([p for p, _ in points], [a for _, a in points], marker="o", markersize=3, **style)

    for axis, (label, name, params) in zip(axes.flat, curves):
        pos, neg = advantages.channel_curves(name, group_size, **params)
        for values in reference:
            draw(axis, values, color="0.75", linestyle="--", linewidth=1)
        draw(axis, pos, color="tab:green", linewidth=1.6, label="$A^+$ (correct)")
        draw(axis, neg, color="tab:red", linewidth=1.6, label="$A^-$ (wrong)")
        axis.axhline(0.0, color="grey", linewidth=0.6)
        axis.set_title(label, fontsize=10)
        axis.grid(alpha=0.3)
    for axis in axes.flat[len(curves):]:
        axis.axis("off")
    for axis in axes[-1]:
        axis.set_xlabel("group accuracy p = k / G")
    for axis in axes[:, 0]:
        axis.set_ylabel("advantage")
    axes.flat[0].legend(fontsize=8, loc="upper right")
    figure.suptitle(f"Advantage curves at G = {group_size} (grey dashed: GRPO)", fontsize=12)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


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
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def _seed_mean_series(runs_records: list[list[dict]], key: str) -> tuple[list[int], list[float]]:
    """(steps, mean over runs) of one metric, on the steps every run logged."""
    per_run = [{r["step"]: r[key] for r in records if r.get(key) is not None} for records in runs_records]
    steps = sorted(set.intersection(*(set(series) for series in per_run))) if per_run else []
    return steps, [sum(series[s] for series in per_run) / len(per_run) for s in steps]


# The paper's figures (PAPER.md sec. 6): file name -> (title, metric keys, smoothing).
TABLE1_FIGURES = {
    "entropy": ("mean token entropy of the rollouts", ["entropy/all"], 0.6),
    "validation_accuracy": ("validation accuracy, greedy (EMA 0.6)", ["val/accuracy"], 0.6),
    "solved_fractions": ("groups all solved (p = 1) and none solved (p = 0), EMA 0.8",
                         ["groups/all_solved_frac", "groups/none_solved_frac"], 0.8),
    "logp_increment": ("log-prob increment of correct rollouts per update (EMA 0.8)", ["logp_increment/correct"], 0.8),
}


def plot_table1_figures(runs: dict[str, list[Path]], out_dir: Path, titles: dict[str, str] | None = None,
                        covariance_steps: int = 40, rows: tuple[tuple[str, str], ...] | None = None,
                        figures: dict | None = None) -> list[Path]:
    """The paper's figures over the Table 1 rows (or ``rows``, (id, title) pairs in colour order):
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
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
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
        paths.append(out_dir / f"{name}.png")
        figure.savefig(paths[-1], dpi=110)
        plt.close(figure)

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
    paths.append(out_dir / "covariance_by_accuracy.png")
    figure.savefig(paths[-1], dpi=110)
    plt.close(figure)
    return paths


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
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m asymrl.plots", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    curves = commands.add_parser("advantage-curves", help="A+(p) and A-(p) of every estimator")
    curves.add_argument("--group-size", type=int, default=8)
    curves.add_argument("--out", type=Path, default=Path("docs/advantage_curves.png"))
    runs = commands.add_parser("run-curves", help="the paper's diagnostics over training, for one or more runs")
    runs.add_argument("run_dirs", nargs="+", type=Path)
    runs.add_argument("--out", type=Path, default=Path("docs/training_curves.png"))
    args = parser.parse_args(argv)
    if args.command == "advantage-curves":
        print(f"wrote {plot_advantage_curves(args.group_size, args.out)}")
    else:
        print(f"wrote {plot_run_curves(args.run_dirs, args.out)}")


if __name__ == "__main__":
    main()
