"""nn.Trainer.export_onnx: the trained model in ONNX Runtime equals Trainer.predict's scores."""

import numpy as np
import onnxruntime as ort

from symdiff import nn


def test_trainer_export_onnx_runs_in_onnx_runtime(tmp_path):
    nn.init.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.random((32, 6), dtype=np.float32)
    y = rng.integers(0, 3, 32)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=0.1), backend="numpy",
                         progress=False)
    trainer.fit([(X, y)], epochs=2)
    path = tmp_path / "model.onnx"
    trainer.export_onnx(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: X})
    np.testing.assert_allclose(got, trainer.predict(X), rtol=1e-5, atol=1e-6)
