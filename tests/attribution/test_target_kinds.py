"""Every target kind against a plain ``tf.GradientTape`` reference, on every output kind.

The reference (:func:`reference`) runs the same layer instances eagerly (``Kind.logits``), watches the
target layer's activation ``A`` through a hook, forms the target score from the logits by hand (numpy
indices, masks computed from the numbers), and computes Grad-CAM ``ReLU(sum_k mean_ij(dS/dA^k) A^k)``.
Criterion, per image: Pearson r >= 0.999 and max |diff| <= 1e-4 of the reference maps' range (the largest
of the batch: a nearly cancelled map can be a single small speck); scores equal to 1e-4. Token layers: ``A`` is laid out as the 4x4 patch grid with the class token set aside. Then the
bad-input cases, each one line and exit 2 with nothing written (CLI) or an AttributionError (API).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import target_models as T  # noqa: E402

from convscope.attribution import cam  # noqa: E402
from convscope.attribution.targets import OutputTarget, SegTarget, parse_target  # noqa: E402
from convscope.errors import AttributionError, OptionError  # noqa: E402
from convscope.present.cli import main  # noqa: E402

X = np.random.default_rng(3).random((4, 16, 16, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def kinds() -> dict[str, T.Kind]:
    return {name: cls() for name, cls in T.KINDS.items()}


def reference(kind: T.Kind, x: np.ndarray, select: Callable[[dict[str, Any]], Any], tokens: bool = False):
    """``(gradcam (N, h, w), scores (N,))`` from a GradientTape on ``kind.logits``."""
    import tensorflow as tf

    box: dict[str, Any] = {}
    with tf.GradientTape() as tape:

        def at(a: Any) -> Any:
            tape.watch(a)
            box["a"] = a
            return a

        logits = kind.logits(tf.constant(x), at)
        scores = select({k: v for k, v in logits.items()})
        total = tf.reduce_sum(scores)
    a, g = box["a"].numpy().astype(np.float64), tape.gradient(total, box["a"]).numpy().astype(np.float64)
    if tokens:  # (N, 1 + 16, C) -> (N, 4, 4, C), class token set aside
        a, g = (v[:, 1:, :].reshape(len(x), 4, 4, -1) for v in (a, g))
    weights = g.mean(axis=(1, 2))
    return np.maximum(np.einsum("nhwc,nc->nhw", a, weights), 0.0), scores.numpy()


def _top(t: Any) -> Any:
    import tensorflow as tf

    return tf.gather(t, tf.argmax(t, axis=-1), batch_dims=1)


def _seg(cls: int, region: np.ndarray | None = None) -> Callable[[dict[str, Any]], Any]:
    """Sum of class ``cls``'s logits over ``region`` (default: the pixels whose argmax is ``cls``)."""

    def select(o: dict[str, Any]) -> Any:
        import tensorflow as tf

        logits = o["seg"]
        mask = np.argmax(logits.numpy(), axis=-1) == cls if region is None else np.broadcast_to(region, logits.shape[:3])
        return tf.reduce_sum(logits[..., cls] * tf.constant(mask, tf.float32), axis=(1, 2))

    return select


REGION = np.zeros((16, 16), bool)
REGION[2:9, 4:12] = True  # --region 4,2,12,9 (x0, y0, x1, y1)

CASES = [
    ("twohead", "top1", lambda o: _top(o["cls"]), (None,)),
    ("twohead", "class:3", lambda o: o["cls"][:, 3], (3,)),
    ("twohead", "output:cls", lambda o: _top(o["cls"]), (None,)),
    ("twohead", "output:box[2]", lambda o: o["box"][:, 2], (2,)),
    ("twohead", "output:box_sigmoid[1]", lambda o: o["box"][:, 1], (1,)),
    ("regression", "output:value", lambda o: o["value"][:, 0], (0,)),
    ("regression", "top1", lambda o: o["value"][:, 0], (0,)),
    ("detection", "output:det[3]", lambda o: _top(o["det"][:, 3, :]), (None,)),
    ("detection", "output:det[3,2]", lambda o: o["det"][:, 3, 2], (3 * 4 + 2,)),
    ("segmenter", "seg:1", _seg(1), (1,)),
    ("segmenter", SegTarget(2, region=(4, 2, 12, 9)), _seg(2, REGION), (2,)),
    ("segmenter", SegTarget(0, mask=REGION.astype(np.uint8) * 255), _seg(0, REGION), (0,)),
    ("tinyvit", "top1", lambda o: _top(o["probs"]), (None,)),
    ("tinyvit", "class:4", lambda o: o["probs"][:, 4], (4,)),
]


@pytest.mark.tf_only
@pytest.mark.parametrize("name,target,select,expected", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_target_matches_gradient_tape(kinds, name, target, select, expected):
    kind = kinds[name]
    want, want_scores = reference(kind, X, select, tokens=name == "tinyvit")
    res = cam(kind.model, X, "gradcam", layer=kind.target_layer, target=target)
    assert res.raw.shape == want.shape
    assert res.used_logits == (name != "regression")
    np.testing.assert_allclose(res.scores, want_scores, rtol=1e-4, atol=1e-4)
    if expected[0] is not None:
        assert set(res.targets) == {expected[0]}
    spans = [float(np.ptp(m)) for m in want]
    assert sum(span > 0 for span in spans) >= 3, f"reference maps are mostly constant: {spans}"
    for i, span in enumerate(spans):
        if span == 0:  # all-negative weighted sum: the ReLU'd map is zero in both
            assert np.abs(res.raw[i]).max() <= 1e-6, f"image {i}: reference map is 0, ours is not"
            continue
        r = np.corrcoef(res.raw[i].ravel(), want[i].ravel())[0, 1]
        assert r >= 0.999, f"image {i}: Pearson r = {r:.5f}"
        assert np.abs(res.raw[i] - want[i]).max() <= 1e-4 * max(spans)  # the maps' scale (a map can be a speck)


@pytest.mark.tf_only
def test_callable_target_sees_every_output_by_name_as_logits(kinds):
    kind = kinds["twohead"]

    def fn(outputs):
        return outputs["box"][:, 0] + 2.0 * outputs["cls"][:, 1]

    want, want_scores = reference(kind, X, lambda o: o["box"][:, 0] + 2.0 * o["cls"][:, 1])
    res = cam(kind.model, X, "gradcam", layer="c2", target=fn)
    np.testing.assert_allclose(res.scores, want_scores, rtol=1e-4, atol=1e-4)
    assert res.score == "custom" and res.targets == (-1,) * len(X)
    np.testing.assert_allclose(res.raw, want, atol=1e-4 * float(np.ptp(want)))


def test_vit_auto_layer_is_the_last_attention_input_and_map_is_4x4(kinds):
    res = cam(kinds["tinyvit"].model, X, "gradcam")
    assert res.layer == "ln_b" and res.raw.shape == (4, 4, 4) and res.maps.shape == (4, 16, 16)
    assert res.upsample == "grid"  # the patch embedding's grid places the tokens


def test_every_method_runs_on_every_kind(kinds):
    targets = {"twohead": "output:box[0]", "regression": "top1", "detection": "output:det[1]",
               "segmenter": "seg:1", "tinyvit": "top1"}
    for name, kind in kinds.items():
        for method in ("gradcam", "gradcampp", "layercam", "scorecam", "saliency", "smoothgrad",
                       "integrated_gradients"):
            options = {"n": 4} if method == "smoothgrad" else {"steps": 4} if method == "integrated_gradients" else {}
            res = cam(kind.model, X[:2], method, target=targets[name], **options)
            assert res.maps.shape == (2, 16, 16) and np.isfinite(res.maps).all(), (name, method)
            assert res.target == str(parse_target(targets[name])) or name == "segmenter"


def test_target_objects_have_readable_specs():
    assert str(parse_target("output:box [2, 1]".replace(" [", "["))) == "output:box[2,1]"
    assert str(parse_target(None)) == "top1" and str(parse_target("7")) == "class:7"
    assert str(SegTarget(1, region=(0, 0, 4, 4))) == "seg:1 region 0,0,4,4"
    assert parse_target("output:my head (v2)[0]") == OutputTarget("my head (v2)", (0,))


@pytest.mark.parametrize(
    "name,target,match",
    [
        ("twohead", "output:nope", r"no output named 'nope'; its outputs: box \(4,\), cls \(5,\)"),
        ("twohead", "output:box[4]", r"index 4 of target output:box\[4\] is out of range .* valid 0\.\.3"),
        ("twohead", "output:box[1,2]", r"gives 2 indices but output 'box' has per-sample shape \(4,\)"),
        ("twohead", "class:5", r"class index 5 is out of range: the model has 5 classes"),
        ("twohead", "seg:1", r"needs a per-pixel output"),
        ("segmenter", "seg:3", r"class 3 of target seg:3 is out of range: output 'seg' has 3 classes"),
        ("segmenter", SegTarget(1, region=(0, 0, 17, 4)), r"region 0,0,17,4 is not inside the 16x16 input"),
        ("segmenter", SegTarget(1, mask=np.ones((5, 7))), r"the mask is 7x5 but must match the input \(16x16\)"),
        ("segmenter", SegTarget(1, mask=np.zeros((16, 16))), r"the mask selects no pixel"),
        ("segmenter", "top1", r"class targets need a \(N, K\) model output"),
        ("regression", "output:value[0,0]", r"gives 2 indices"),
    ],
)
def test_bad_targets_are_refused_with_the_value(kinds, name, target, match):
    with pytest.raises(AttributionError, match=match):
        cam(kinds[name].model, X[:1], "gradcam", target=target)


def test_tokens_that_do_not_fit_are_refused(kinds):
    with pytest.raises(OptionError, match=r"--tokens 5x5 \(25 patches\) does not fit the layer's 17 tokens"):
        cam(kinds["tinyvit"].model, X[:1], "gradcam", layer="ln_b", tokens="5x5")
    res = cam(kinds["tinyvit"].model, X[:1], "gradcam", layer="ln_b", tokens="4x4")
    assert res.raw.shape == (1, 4, 4)


# -- the CLI ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(kinds, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("kinds")
    out = {}
    for name in ("twohead", "segmenter", "tinyvit"):
        kinds[name].model.save(d / f"{name}.keras")
        out[name] = d / f"{name}.keras"
    np.save(d / "x.npy", X[:2])
    out["x"] = d / "x.npy"
    from PIL import Image

    Image.fromarray(REGION.astype(np.uint8) * 255).save(d / "mask.png")
    Image.fromarray(np.full((10, 16), 255, np.uint8)).save(d / "small.png")
    out["mask"], out["small"] = d / "mask.png", d / "small.png"
    return out


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_targets_write_maps_equal_to_the_api(kinds, files, tmp_path, capsys):
    out = tmp_path / "seg"
    code, stdout, err = run(capsys, "cam", files["segmenter"], files["x"], "--target", "seg:2", "--mask",
                            files["mask"], "--out", out, "--save-arrays")
    assert code == 0, err
    saved = np.load(out / "cam.npz")["gradcam_raw"]
    want = cam(kinds["segmenter"].model, X[:2], "gradcam", target=SegTarget(2, mask=REGION))
    np.testing.assert_allclose(saved, want.raw, rtol=1e-5, atol=1e-6)
    assert "target seg:2 mask" in stdout
    out = tmp_path / "box"
    code, stdout, err = run(capsys, "cam", files["twohead"], files["x"], "--target", "output:box[2]", "--out", out)
    assert code == 0 and (out / "x.npy[0]" / "gradcam.png").is_file(), err
    code, _, err = run(capsys, "cam", files["twohead"], files["x"], "--class", "3", "--out", tmp_path / "c3")
    assert code == 0, err


@pytest.mark.parametrize(
    "model,args,needle",
    [
        ("twohead", ["--target", "output:nope"], "no output named 'nope'"),
        ("twohead", ["--target", "output:box[7]"], "index 7 of target output:box[7] is out of range"),
        ("segmenter", ["--target", "seg:1", "--region", "0,0,40,8"], "region 0,0,40,8 is not inside the 16x16 input"),
        ("segmenter", ["--target", "seg:1", "--mask", "SMALL"], "the mask is 16x10 but must match"),
        ("twohead", ["--target", "seg:1"], "needs a per-pixel output"),
        ("tinyvit", ["--layer", "ln_b", "--tokens", "5x5"], "--tokens 5x5 (25 patches) does not fit the layer's 17"),
        ("tinyvit", ["--tokens", "5by5"], "--tokens '5by5' is not a grid size"),
        ("twohead", ["--target", "output:box[1]", "--region", "0,0,4,4"], "--region applies to --target seg:CLS"),
        ("twohead", ["--target", "class:1", "--class", "1"], "give --target or --class, not both"),
        ("twohead", ["--target", "outputs:box"], "target 'outputs:box' is not understood"),
        ("segmenter", ["--target", "seg:1", "--region", "4,4,2,8"], "--region '4,4,2,8' is empty"),
    ],
)
def test_cli_bad_targets_one_line_exit_2_nothing_written(files, tmp_path, capsys, model, args, needle):
    args = [str(files["small"]) if a == "SMALL" else a for a in args]
    out = tmp_path / "out"
    code, _, err = run(capsys, "cam", files[model], files["x"], *args, "--out", out)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("convscope: error: "), (code, err)
    assert needle in lines[0], lines[0]
    assert not out.exists() and not any(p.name.startswith(".out") for p in tmp_path.iterdir())


# -- the same maps on JAX and torch ------------------------------------------------------------------------
@pytest.mark.tf_only
def test_every_target_kind_equals_tensorflow_on_jax_and_torch(kinds, tmp_path):
    import os
    import subprocess
    import sys

    worker = Path(__file__).with_name("target_worker.py")
    for name, kind in kinds.items():
        kind.model.save(tmp_path / f"{name}.keras")
    np.save(tmp_path / "x.npy", X)
    procs = {}
    for backend in ("tensorflow", "jax", "torch"):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        procs[backend] = subprocess.Popen([sys.executable, str(worker), str(tmp_path), str(tmp_path / f"{backend}.npz")],
                                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for backend, proc in procs.items():
        output, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{backend} worker failed:\n{output[-3000:]}"
    results = {b: np.load(tmp_path / f"{b}.npz") for b in procs}
    assert {str(r["backend"]) for r in results.values()} == set(procs)
    reference = results["tensorflow"]
    keys = [k for k in reference.files if k != "backend" and not k.endswith("|scores")]
    assert len(keys) == 9
    for backend in ("jax", "torch"):
        for key in keys:
            a, b = reference[key], results[backend][key]
            scale = float(np.abs(a).max())
            assert scale > 0, key
            err = float(np.abs(a - b).max())
            assert err <= 1e-4 * scale, f"{key}: {backend} vs tensorflow max diff {err:.3g} (scale {scale:.3g})"
            np.testing.assert_allclose(results[backend][key + "|scores"], reference[key + "|scores"], rtol=1e-4, atol=1e-4)


# -- the explorer ----------------------------------------------------------------------------------------
def test_serve_explains_every_target_kind_and_refuses_bad_ones(files, tmp_path):
    from PIL import Image
    from starlette.testclient import TestClient

    from convscope.present.web.app import create_app
    from convscope.present.web.server import build_explorer

    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(2):
        Image.fromarray((X[i] * 255).astype(np.uint8)).save(folder / f"p{i}.png")
    for name, good, bad in [
        ("segmenter", {"target": "seg:2", "region": "4,2,12,9"}, {"target": "seg:7", "says": "class 7"}),
        ("twohead", {"target": "output:box[2]"}, {"target": "output:nope", "says": "no output named 'nope'"}),
        ("tinyvit", {"target": "class:4"}, {"target": "class:40", "says": "class index 40 is out of range"}),
    ]:
        says = bad.pop("says")
        explorer = build_explorer(str(files[name]), images=folder)
        with TestClient(create_app(explorer), base_url="http://127.0.0.1") as client:
            default = client.get("/api/cam", params={"image": "f0"})
            assert default.status_code == 200, default.text
            if name == "segmenter":  # the class predicted on most pixels (other than 0)
                assert default.json()["spec"].startswith("seg:") and default.json()["explained"].startswith("seg")
            meta = client.get("/api/cam", params={"image": "f0", **good})
            assert meta.status_code == 200, meta.text
            assert meta.json()["spec"] == (good["target"] + (" region 4,2,12,9" if "region" in good else ""))
            assert client.get("/api/cam.png", params={"image": "f1", **good}).content[:8] == b"\x89PNG\r\n\x1a\n"
            refused = client.get("/api/cam", params={"image": "f0", **bad})
            assert 400 <= refused.status_code < 500 and says in refused.json()["error"], refused.text
            assert client.get("/api/model").status_code == 200  # and it keeps serving


def test_auto_layer_walks_back_from_another_heads_branch_for_every_method():
    """The last spatial layer feeds only the box head: every method (Score-CAM too, which needs no
    gradients) explains the class head at the latest layer that reaches it."""
    L = keras.layers
    keras.utils.set_random_seed(3)
    inputs = keras.Input((12, 12, 3))
    trunk = L.Conv2D(6, 3, padding="same", activation="relu", name="trunk")(inputs)
    cls = L.Dense(4, activation="softmax", name="cls")(L.GlobalAveragePooling2D(name="gap_cls")(trunk))
    branch = L.Conv2D(5, 3, padding="same", activation="relu", name="box_branch")(trunk)
    box = L.Dense(4, name="box")(L.GlobalAveragePooling2D(name="gap_box")(branch))
    model = keras.Model(inputs, {"cls": cls, "box": box})
    x = np.random.default_rng(0).random((2, 12, 12, 3)).astype(np.float32)
    for method in ("gradcam", "scorecam"):
        assert cam(model, x, method, target="top1").layer == "trunk", method
        assert cam(model, x, method, target="output:box[1]").layer == "box_branch", method
