"""``symdiff export CHECKPOINT --model KIND -o model.onnx`` through the core command line."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import symdiff as sd
from symdiff import cli, nn


def _run(path, feed):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)


@pytest.fixture(scope="module")
def mlp_checkpoint(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 6)).astype(np.float32)
    y = (X[:, 0] > X[:, 1]).astype(np.int64)
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 2))
    trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=0.2), backend="numpy",
                         progress=False)
    trainer.fit(nn.data.DataLoader(nn.data.ArrayDataset(X, y), batch_size=16), epochs=1)
    path = tmp_path_factory.mktemp("ck") / "mlp.npz"
    trainer.save(path)
    return path, trainer, X


def test_export_an_mlp_checkpoint(mlp_checkpoint, tmp_path, capsys):
    path, trainer, X = mlp_checkpoint
    out = tmp_path / "model.onnx"
    assert cli.main(["export", str(path), "--model", "mlp", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mlp model, input X (m, 6) -> Z2 (m, 2)" in printed, printed
    (got,) = _run(out, {"X": X})
    np.testing.assert_allclose(got, trainer.predict(X), rtol=1e-5, atol=1e-5)
    assert cli.main(["export", str(path), "-o", str(tmp_path / "fixed.onnx"), "--batch", "4"]) == 0
    dims = onnx.load(tmp_path / "fixed.onnx").graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [4, 6]


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_export_a_language_model_checkpoint(tmp_path, capsys, kind):
    from symdiff.nn.language_model import CharLSTM, CharTransformer, LanguageModelTrainer
    from symdiff.nn.onnx_export import inference_graph

    nn.init.manual_seed(1)
    model = CharLSTM(12, embed=4, hidden=6, num_layers=1) if kind == "lstm" else \
        CharTransformer(12, d_model=8, nhead=2, num_layers=1, context=16)
    trainer = LanguageModelTrainer(model, nn.optim.SGD(model.parameters(), lr=0.1), 5, 2, backend="numpy")
    ck, out = tmp_path / "lm.npz", tmp_path / "lm.onnx"
    trainer.save(ck)
    assert cli.main(["export", str(ck), "--model", kind, "-o", str(out)]) == 0
    length = "T" if kind == "lstm" else "5"  # the transformer's positions: its training length
    assert f"{kind} model, input ids ({length}, m)" in capsys.readouterr().out
    ids = np.random.default_rng(1).integers(0, 12, size=(7 if kind == "lstm" else 5, 3)).astype(np.int64)
    outputs, inputs, params = inference_graph(model, ids.shape, dtype="int64", input_names=["ids"])
    want = sd.evaluate(outputs, {inputs[0]: ids, **params})
    for got, w in zip(_run(out, {"ids": ids}), want):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("args, message", [
    (["nowhere.npz"], "no such checkpoint: nowhere.npz"),
    (["BROKEN"], "not a readable checkpoint"),
    (["CK", "--model", "lenet"], "holds a mlp model, not --model lenet"),
    (["CK", "--model", "gpt"], "argument --model: invalid choice: 'gpt'"),
    (["CK", "--batch", "0"], "--batch must be a positive size"),
    (["CK", "--seq-len", "3"], "--seq-len applies to the language models"),
])
def test_errors_are_one_line_and_exit_2(args, message, mlp_checkpoint, tmp_path, capsys):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    args = [str(mlp_checkpoint[0]) if a == "CK" else str(broken) if a == "BROKEN" else a for a in args]
    assert cli.main(["export", *args, "-o", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("symdiff export: error: ") and message in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "x.onnx").exists()
