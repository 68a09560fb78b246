"""`python -m analysis.untrained`: section F's figures and the receptive-field table."""

from __future__ import annotations

from pathlib import Path

from analysis.untrained import gradient_figure, main, weight_variance_figure


def test_doubling_layer_3_variance_widens_pooled_activations(tmp_path: Path) -> None:
    stds = weight_variance_figure(tmp_path / "w.png")
    assert 1.2 < stds["doubled_std"] / stds["control_std"] < 1.7  # ~sqrt(2)
    assert (tmp_path / "w.png").stat().st_size > 10_000


def test_first_layer_gets_the_smallest_gradient(tmp_path: Path) -> None:
    norms = [n for _, n, _ in gradient_figure(tmp_path / "g.png")]
    assert len(norms) >= 6 and norms[0] == min(norms) and norms[0] < norms[-1]


def test_cli_writes_markdown_with_figures(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    text = (tmp_path / "probes.md").read_text()
    assert "figures/weight_variance.png" in text and "kernel 7x7: 7," in text
    assert (tmp_path / "figures" / "gradient_depth.png").is_file()
