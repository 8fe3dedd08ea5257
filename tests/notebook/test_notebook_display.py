"""Rich display of results (in-process): the layer table formatter, ProbeSummary, and the explorer's logic."""

from __future__ import annotations

import types

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("IPython")

import convscope  # noqa: E402
from convscope.errors import OptionError  # noqa: E402
from convscope.models.inspect import format_table  # noqa: E402
from convscope.models.zoo import sample_digits  # noqa: E402
from convscope.present import notebook  # noqa: E402


@pytest.fixture(scope="module")
def info():
    return convscope.inspect("mnist-cnn")


def test_info_view_is_an_html_table_and_plain_text(info):
    view = notebook.info_view(info)
    html = view._repr_html_()
    assert html.count("<tr>") == len(info.layers) + 1
    for row in info.to_dicts():
        assert f">{row['path']}<" in html
    assert "1,199,882 parameters" in html and "<script" not in html
    assert repr(view) == format_table(info)


def test_enable_registers_a_formatter_for_model_info(info):
    from IPython.core.formatters import DisplayFormatter

    shell = types.SimpleNamespace(display_formatter=DisplayFormatter())
    before, _ = shell.display_formatter.format(info)
    assert before["text/html"] == info._repr_html_()  # ModelInfo's own compact card
    assert notebook.enable(shell) is True
    data, _ = shell.display_formatter.format(info)
    assert data["text/html"] == notebook.info_view(info)._repr_html_()
    notebook.disable(shell)
    data, _ = shell.display_formatter.format(info)
    assert data["text/html"] == info._repr_html_()


def test_enable_outside_ipython_returns_false():
    assert notebook.enable() is False


def test_probe_summary_statistics():
    act = np.zeros((2, 3, 3, 4), np.float32)
    act[0, :, :, 1] = 2.0
    act[1, 0, 0, 2] = -1.0
    act[1, 1, 1, 3] = np.nan
    act[0, 2, 2, 3] = np.inf
    summary = notebook.summarize({"a": act, "v": np.array([[1.0, 0.0], [3.0, 0.0]]), "__output__": np.ones((2, 1))})
    a, v = summary.layers
    assert summary.n_samples == 2 and [r.layer for r in summary.layers] == ["a", "v"]
    assert (a.min, a.max, a.inactive, a.channels, a.n_nan, a.n_inf) == (-1.0, 2.0, 1, 4, 1, 1)
    finite = act[np.isfinite(act)]
    assert a.mean == pytest.approx(float(finite.mean()))
    assert a.zero_fraction == pytest.approx(float((act == 0).mean()))
    assert (v.inactive, v.channels, v.mean) == (1, 2, 1.0)
    html = summary._repr_html_()
    assert "2 layers probed on 2 samples" in html and "1 of 4" in html and "__output__" not in html
    assert "a: (2, 3, 3, 4)" in repr(summary)


@pytest.fixture(scope="module")
def explorer():
    pytest.importorskip("ipywidgets")
    x, _ = sample_digits()
    return notebook.explore("mnist-cnn", x[:3], layers=["conv_0", "conv_1", "dense_0"], max_channels=16)


def test_explorer_controls_drive_the_picture(explorer):
    acts = explorer.activations
    assert list(acts) == ["conv_0", "conv_1", "dense_0"] and explorer.names == ("array[0]", "array[1]", "array[2]")
    assert explorer.grid.layer == "conv_0" and len(explorer.grid.channels) == 16
    assert explorer.image.value == explorer.grid.to_png()
    first = explorer.image.value
    explorer.set(layer="conv_1", image=2, norm="layer", cmap="magma")
    assert explorer.image.value != first
    expected = convscope.render_activation(acts["conv_1"][2], layer="conv_1", norm="layer", cmap="magma", max_channels=16)
    assert np.array_equal(explorer.grid.image, expected.image)
    assert len(explorer.channel_control.options) == 65 and explorer.channel_control.value == -1
    explorer.set(channel=7)
    assert explorer.grid.channels == (7,) and explorer.grid.image.shape[0] > 200  # one map, enlarged
    explorer.layer_control.value = "conv_0"  # what a click in the frontend does
    assert explorer.channel_control.value == -1 and len(explorer.channel_control.options) == 33
    assert explorer.grid.layer == "conv_0"
    explorer.set(layer="dense_0")
    assert explorer.channel_control.disabled and explorer.grid.kind == "vector"
    explorer.set(image="array[1]", channel="all")
    assert explorer.image_control.value == 1
    assert "array[1]" in explorer.caption.value


def test_explorer_rejects_what_it_does_not_offer(explorer):
    with pytest.raises(OptionError, match="conv_9"):
        explorer.set(layer="conv_9")
    explorer.set(layer="conv_0")
    with pytest.raises(OptionError, match=r"0..31"):
        explorer.set(channel=99)
    with pytest.raises(OptionError, match="image"):
        explorer.set(image=7)
    with pytest.raises(OptionError, match="bogus"):
        explorer.set(norm="bogus")


def test_display_modules_import_light():
    import subprocess
    import sys

    code = ("import sys, convscope.present.notebook, convscope.present.report, convscope.present.cli_report\n"
            "print(sorted({'tensorflow', 'keras', 'ipywidgets', 'jax', 'torch'} & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
