"""The advantage-curve figure is drawn for every estimator."""

from asymrl import plots


def test_advantage_curves_figure(tmp_path):
    out = plots.plot_advantage_curves(8, tmp_path / "curves.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    names = {name for _, name, _ in plots.CURVES}
    assert {"reinforce", "grpo", "asymgrpo", "pos_only", "neg_only", "ent_decrease", "ent_increase", "dr_grpo", "passk"} <= names
