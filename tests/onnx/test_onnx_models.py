"""symdiff.nn models exported to ONNX run in ONNX Runtime and equal the compiled inference
program: MLP, CNN (Conv2d, pools, BatchNorm in eval), LSTM (as an ONNX Scan and unrolled),
transformer block; exports are deterministic and named after the symdiff nodes."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from symdiff.nn.onnx_export import inference_graph

import symdiff as sd
from symdiff import nn

RTOL, ATOL = 1e-5, 1e-5  # ATOL: float32 sums rounded in another order (see test_onnx_ops.py)


def _run(path, feed):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)


def _check(model, shape, arrays, tmp_path, **options):
    """Export ``model``, run it in ONNX Runtime on ``arrays`` and compare every output with the
    compiled cpu program of the same eval-mode graph (parameters as inputs)."""
    path = tmp_path / f"{type(model).__name__}.onnx"
    proto = model.export_onnx(path, shape, **options)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    outputs, inputs, params = inference_graph(model, shape, call_kwargs=options.get("call_kwargs"))
    program = sd.compile(outputs, inputs + list(params), backend="cpu")
    want = program(*arrays, *params.values())
    got = _run(path, {leaf.name: a for leaf, a in zip(inputs, arrays)})
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)
    return proto


def _randomize_batchnorm(model, rng):
    """Running statistics away from (0, 1), so that eval mode visibly uses them."""
    for name, buffer in model.named_buffers():
        buffer.data[...] = (rng.uniform(0.5, 2.0, buffer.shape) if "var" in name
                            else rng.normal(size=buffer.shape)).astype(buffer.data.dtype)


def test_mlp_with_dropout_and_batchnorm(tmp_path):
    nn.init.manual_seed(1)
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 4))
    _randomize_batchnorm(model, rng)
    X = rng.normal(size=(7, 6)).astype(np.float32)
    proto = _check(model, ("m", 6), [X], tmp_path)
    assert sorted(i.name for i in proto.graph.initializer) == ["W1", "W2", "b1", "b2", "beta1", "gamma1",
                                                               "mu1", "var1"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "m"
    assert "Z1" in {n.name for n in proto.graph.node}  # the printed formula's names
    assert model.training, "exporting must not leave the model in eval mode"


def test_cnn_conv_pools_batchnorm_eval(tmp_path):
    nn.init.manual_seed(2)
    rng = np.random.default_rng(1)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=2), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))
    _randomize_batchnorm(model, rng)
    X = rng.normal(size=(3, 2, 8, 8)).astype(np.float32)
    proto = _check(model, ("N", 2, 8, 8), [X], tmp_path)
    types = {n.op_type for n in proto.graph.node}
    assert {"Conv", "MaxPool", "AveragePool"} <= types


def test_lenet5_with_batchnorm(tmp_path):
    nn.init.manual_seed(3)
    model = nn.LeNet5(1, 10, image_size=28, batchnorm=True)
    _randomize_batchnorm(model, np.random.default_rng(2))
    X = np.random.default_rng(3).normal(size=(2, 1, 28, 28)).astype(np.float32)
    _check(model, (None, 1, 28, 28), [X], tmp_path)


@pytest.mark.parametrize("unroll", [False, True], ids=["scan", "unrolled"])
def test_lstm(tmp_path, unroll):
    nn.init.manual_seed(4)
    model = nn.LSTM(3, 5, num_layers=2, unroll=unroll)
    X = np.random.default_rng(4).normal(size=(6, 2, 3)).astype(np.float32)
    proto = _check(model, (6, "B", 3), [X], tmp_path)
    scans = [n for n in proto.graph.node if n.op_type == "Scan"]
    assert len(scans) == (0 if unroll else 2)  # one ONNX Scan per layer, its body the step


def test_lstm_scan_with_a_dynamic_sequence_length(tmp_path):
    nn.init.manual_seed(5)
    model = nn.LSTM(3, 4)
    path = tmp_path / "lstm.onnx"
    model.export_onnx(path, ("T", "B", 3))
    outputs, inputs, params = inference_graph(model, ("T", "B", 3))
    for T in (1, 4, 9):
        X = np.random.default_rng(T).normal(size=(T, 2, 3)).astype(np.float32)
        want = sd.evaluate(outputs, {inputs[0]: X, **params})
        for g, w in zip(_run(path, {"X": X}), want):
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)


def test_transformer_block(tmp_path):
    nn.init.manual_seed(6)
    block = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, activation="gelu")
    X = np.random.default_rng(6).normal(size=(5, 3, 8)).astype(np.float32)
    _check(block, (5, "B", 8), [X], tmp_path, call_kwargs={"causal": True})


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_character_language_models(tmp_path, kind):
    """Embedding (a Gather), the recurrent or attention layers and the decoder, on int64 ids."""
    from symdiff.nn.language_model import CharLSTM, CharTransformer

    nn.init.manual_seed(9)
    model = CharLSTM(12, embed=4, hidden=6, num_layers=2) if kind == "lstm" else \
        CharTransformer(12, d_model=8, nhead=2, num_layers=1, context=16)
    shape = ("T", "m") if kind == "lstm" else (5, "m")
    path = tmp_path / f"{kind}.onnx"
    model.export_onnx(path, shape, dtype="int64", input_names=["ids"])
    outputs, inputs, params = inference_graph(model, shape, dtype="int64", input_names=["ids"])
    ids = np.random.default_rng(9).integers(0, 12, size=(5, 3)).astype(np.int64)
    got = _run(path, {"ids": ids})
    want = sd.evaluate(outputs, {inputs[0]: ids, **params})
    assert len(got) == len(want) == (3 if kind == "lstm" else 1)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", ["lstm", "cnn"])
def test_gradient_graphs_export_too(tmp_path, kind):
    """Not only inference: the weight gradients of a loss (BPTT as a reverse ONNX Scan; conv's
    max_pool's and avg_pool's adjoints) run in ONNX Runtime and equal symdiff's."""
    nn.init.manual_seed(10)
    if kind == "lstm":
        model, shape, X = nn.LSTM(3, 4), (5, "B", 3), np.random.default_rng(10).normal(size=(5, 2, 3))
    else:
        model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.AvgPool2d(2),
                              nn.Flatten(), nn.Linear(8, 3))
        shape, X = ("N", 1, 8, 8), np.random.default_rng(10).normal(size=(2, 1, 8, 8))
    outputs, inputs, params = inference_graph(model, shape)
    grads = sd.grad(sd.sum(sd.square(outputs[0])), list(params))
    path = tmp_path / "grads.onnx"
    sd.onnx.export(grads, inputs, path, params=params)
    X = X.astype(np.float32)
    want = sd.evaluate(grads, {inputs[0]: X, **params})
    for g, w in zip(_run(path, {"X": X}), want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=ATOL)  # sums over steps and pixels: rtol 1e-4


def test_exports_are_deterministic_and_atomic(tmp_path):
    nn.init.manual_seed(7)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    model.export_onnx(a, ("m", 4))
    model.export_onnx(b, ("m", 4))
    assert a.read_bytes() == b.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "b.onnx"]  # no temporaries left


def test_the_trainer_exports_its_trained_model(tmp_path):
    from symdiff.nn.onnx_export import export_trainer

    rng = np.random.default_rng(8)
    X = rng.normal(size=(64, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    nn.init.manual_seed(8)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
    trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=0.5), backend="numpy",
                         progress=False)
    with pytest.raises(ValueError, match="has not seen data"):
        export_trainer(trainer, tmp_path / "early.onnx")
    trainer.fit(nn.data.DataLoader(nn.data.ArrayDataset(X, y), batch_size=16), epochs=2)
    path = tmp_path / "trained.onnx"
    export_trainer(trainer, path)
    (got,) = _run(path, {"X": X})
    np.testing.assert_allclose(got, trainer.predict(X), rtol=RTOL, atol=ATOL)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    np.testing.assert_array_equal(weights["W1"], model.layers[0].weight.data)


def test_bad_inputs_are_clear_errors(tmp_path):
    model = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"do not fit the model"):
        model.export_onnx(tmp_path / "x.onnx", ("m", 5))
    X = sd.tensor("X", ("m", 4), "float32")
    W = sd.tensor("W", (4, 2), "float32")
    with pytest.raises(sd.onnx.ExportError, match="leaf W .* neither an input nor a parameter"):
        sd.onnx.export(X @ W, [X], tmp_path / "y.onnx")
    with pytest.raises(sd.onnx.ExportError, match=r"parameter W is \(4, 2\) float32, its value is \(2, 4\)"):
        sd.onnx.export(X @ W, [X], tmp_path / "y.onnx", params={W: np.zeros((2, 4), np.float32)})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sd.onnx.export(X @ W, [X], tmp_path / "missing" / "y.onnx", params={W: np.zeros((4, 2), np.float32)})
