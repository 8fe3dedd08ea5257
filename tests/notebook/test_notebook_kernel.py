"""The tutorial notebook, executed by a real Jupyter kernel (nbclient + ipykernel), and its outputs.

Checks what a notebook user sees: the layer table and the probe summary as HTML, feature grids as PNGs
identical to what the library renders in-process, the explorer as a widget (and its state in the
notebook, as a frontend receives it), controls changed the way a frontend changes them, the report
file, and the training callback's GIF.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("ipywidgets")
pytest.importorskip("mlxtend")

pytestmark = pytest.mark.xdist_group("notebook-kernel")

TUTORIAL = Path(__file__).resolve().parents[2] / "examples" / "tutorial.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

PROBE_CELL = """
import json
trail = []
for layer, channel in (("conv_0", 3), ("pool", 10)):
    ex.layer_control.value = layer          # what a frontend's comm update does
    ex.channel_control.value = channel
    trail.append({"layer": ex.grid.layer, "channels": list(ex.grid.channels), "png": len(ex.image.value),
                  "options": len(ex.channel_control.options)})
print("PROBE " + json.dumps(trail))
"""


def png(output: dict) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(output["data"]["image/png"]))) as img:
        return np.asarray(img.convert("RGB"))


def result_of(cell: dict, mime: str) -> dict:
    found = [o for o in cell["outputs"] if mime in o.get("data", {})]
    assert found, (cell["source"][:60], [o.get("data", {}).keys() for o in cell["outputs"]])
    return found[-1]


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> Iterator[tuple[dict, Path, Path]]:
    workdir = tmp_path_factory.mktemp("tutorial")
    shutil.copy(TUTORIAL, workdir / TUTORIAL.name)
    nb = nbformat.read(workdir / TUTORIAL.name, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the tutorial without outputs"
    explorer_at = next(i for i, c in enumerate(nb.cells) if "notebook.explore(" in c.source)
    nb.cells.insert(explorer_at + 1, nbformat.v4.new_code_cell(PROBE_CELL))
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3", store_widget_state=True,
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()
    printed = "".join(o.get("text", "") for o in nb.cells[1].outputs if o.output_type == "stream")
    out = Path(printed.split("outputs in ", 1)[1].split("\n", 1)[0].strip())
    yield nb, workdir, out
    shutil.rmtree(out, ignore_errors=True)


def cell_with(nb: dict, text: str) -> dict:
    return next(c for c in nb.cells if c.cell_type == "code" and text in c.source)


def test_no_cell_failed(executed):
    nb, _, _ = executed
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source


def test_layer_table_and_probe_summary_display_as_html(executed):
    nb, _, _ = executed
    table = result_of(cell_with(nb, 'convscope.inspect("mnist-cnn")'), "text/html")["data"]["text/html"]
    assert "<table" in table and ">conv_1<" in table and "1,199,882 parameters" in table
    summary = result_of(cell_with(nb, "notebook.summarize(acts)"), "text/html")["data"]["text/html"]
    assert "4 layers probed on 4 samples" in summary and "inactive channels" in summary and ">dense_0<" in summary


def test_grids_are_the_pictures_the_library_renders(executed):
    import convscope
    from convscope.models.zoo import sample_digits

    nb, _, _ = executed
    x, _ = sample_digits()
    acts = convscope.activations("mnist-cnn", x[:8], layers=["conv_1"])
    grid = png(result_of(cell_with(nb, 'channels="top16"'), "image/png"))
    expected = convscope.render_activation(acts["conv_1"][0], layer="conv_1", norm="layer", cmap="viridis", channels="top16")
    assert np.array_equal(grid, expected.image)
    single = png(result_of(cell_with(nb, "ex.set(layer="), "image/png"))
    expected = convscope.render_activation(acts["conv_1"][3], layer="conv_1", norm="percentile", channels=[5], scale=10)
    assert np.array_equal(single, expected.image)


def test_explorer_is_a_widget_with_its_state_in_the_notebook(executed):
    nb, _, _ = executed
    view = result_of(cell_with(nb, "notebook.explore("), WIDGET_VIEW)["data"][WIDGET_VIEW]
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    assert view["model_id"] in state and state[view["model_id"]]["model_name"] == "VBoxModel"
    dropdowns = [m["state"] for m in state.values() if m["model_name"] == "DropdownModel"]
    labels = {d["description"]: d["_options_labels"] for d in dropdowns}
    assert labels["layer"] == ["conv_0", "conv_1", "pool"]
    assert labels["norm"] == ["channel", "layer", "symmetric", "percentile", "raw"]
    assert labels["image"] == [f"array[{i}]" for i in range(8)]
    assert any(m["model_name"] == "ImageModel" for m in state.values())
    out = "".join(o.get("text", "") for o in cell_with(nb, "PROBE ").outputs if o.output_type == "stream")
    trail = json.loads(out.split("PROBE ", 1)[1])
    assert [(t["layer"], t["channels"], t["options"]) for t in trail] == [("conv_0", [3], 33), ("pool", [10], 65)]
    assert all(t["png"] > 1000 for t in trail)


def test_report_and_training_gif(executed):
    nb, workdir, out = executed
    assert sorted(p.name for p in workdir.iterdir()) == [TUTORIAL.name]  # nothing written next to the notebook
    assert out.is_dir() and not out.is_relative_to(TUTORIAL.parent)
    printed = "".join(o.get("text", "") for o in cell_with(nb, "build_report(").outputs if o.output_type == "stream")
    assert "Report(title='convscope report: mnist-cnn', inputs=3" in printed
    assert "<!DOCTYPE html>" in (out / "mnist_report.html").read_text(encoding="utf-8")
    steps = result_of(cell_with(nb, "FeatureMapCallback("), "text/plain")["data"]["text/plain"]
    assert steps.startswith("([1, 2, 3],")
    gif = result_of(cell_with(nb, "Image(filename="), "image/gif")["data"]["image/gif"]
    with Image.open(io.BytesIO(base64.b64decode(gif))) as img:
        assert img.format == "GIF" and img.n_frames == 3
    assert any((out / "training_maps" / "tensorboard").iterdir())
