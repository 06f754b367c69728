"""The Trainer end to end: accuracy on real data, exact resume, checkpoints, bad input."""

import os

import numpy as np
import pytest
from symdiff.nn.checkpoint import CheckpointError
from symdiff.nn.data import ArrayDataset, DataLoader

from symdiff import nn


def test_softmax_regression_on_mnist_test_images(mnist_test):
    X, y = mnist_test
    train, held_out = ArrayDataset(X, y).split(0.2, seed=0)
    nn.init.manual_seed(0)
    model = nn.Linear(784, 10)
    trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=0.5), progress=False)
    history = trainer.fit(DataLoader(train, batch_size=100, shuffle=True), epochs=2)
    assert history["loss"][1] < history["loss"][0]
    result = trainer.evaluate(DataLoader(held_out, batch_size=1000))  # the CLI test's programs: one compile
    assert result["accuracy"] > 0.85, result
    predicted = trainer.predict(held_out.X).argmax(1)
    assert abs((predicted == held_out.y).mean() - result["accuracy"]) < 1e-9


def test_mlp_on_the_mnist_sample_generalizes_to_the_test_set(mnist_sample, mnist_test):
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                         progress=False)
    sample = ArrayDataset(*mnist_sample)
    assert len(sample) % 64 != 0  # a partial last batch
    trainer.fit(DataLoader(sample, batch_size=64, shuffle=True), epochs=3)
    result = trainer.evaluate(DataLoader(ArrayDataset(*mnist_test), batch_size=1000))
    assert result["accuracy"] > 0.88, result
    trainer.evaluate(DataLoader(ArrayDataset(*mnist_test), batch_size=333))  # batches of 333 and 10
    _assert_each_graph_compiled_once(trainer)


def _assert_each_graph_compiled_once(trainer):
    """Whatever the batch sizes: one library per program (the train step, the eval step)."""
    for kind, (program, _) in trainer._programs.items():
        assert program.specialized_because is None, (kind, program.specialized_because)
        assert program.builds <= 1, (kind, program.builds)  # 0: loaded from the program cache
        assert program.libraries == 1, kind
        assert len(program.signatures) >= 2, kind  # it did serve more than one batch size


def test_digits_with_adam_batchnorm_dropout(digits):
    train, test = ArrayDataset(*digits).split(0.2, seed=1)
    nn.init.manual_seed(1)
    model = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 10))
    trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.Adam(model.parameters(), lr=0.01), progress=False)
    trainer.fit(DataLoader(train, batch_size=64, shuffle=True), epochs=5)
    assert not np.allclose(model.layers[1].running_mean.data, 0)  # running statistics moved, in place
    assert trainer.evaluate(DataLoader(test, batch_size=500))["accuracy"] > 0.9
    trainer.evaluate(DataLoader(test, batch_size=100))
    _assert_each_graph_compiled_once(trainer)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_batch_norm_statistics_move_in_training_and_serve_eval_mode(backend):
    rng = np.random.default_rng(5)
    X = (rng.normal(size=(40, 3)) * [1, 2, 3] + [4, -5, 6]).astype(np.float32)
    y = rng.integers(0, 2, 40)
    nn.init.manual_seed(0)
    bn = nn.BatchNorm1d(3, momentum=0.25)
    model = nn.Sequential(bn, nn.Linear(3, 2))
    trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=0.1), backend=backend,
                         progress=False)
    trainer.fit(DataLoader(ArrayDataset(X, y), batch_size=20), epochs=1)
    mean, var = np.zeros(3), np.ones(3)
    for batch in (X[:20], X[20:]):  # training mode: r <- 0.75 r + 0.25 (its batch statistic), each step
        mean, var = 0.75 * mean + 0.25 * batch.mean(0), 0.75 * var + 0.25 * batch.var(0)
    np.testing.assert_allclose(bn.running_mean.data, mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.data, var, rtol=1e-5)
    # eval mode (predict) normalizes with the updated running statistics
    linear = model.layers[1]
    normalized = bn.weight.data * (X - mean) / np.sqrt(var + 1e-5) + bn.bias.data
    expected = normalized @ linear.weight.data + linear.bias.data
    np.testing.assert_allclose(trainer.predict(X), expected, rtol=1e-4, atol=1e-5)


def _resumable(seed=4):
    nn.init.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2),
                          nn.Residual(nn.Sequential(nn.Linear(16, 16), nn.Tanh())), nn.LayerNorm1d(16),
                          nn.Linear(16, 3))
    return nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.AdamW(model.parameters(), lr=0.01), seed=9,
                      progress=False)


def _loader(blobs):
    return DataLoader(ArrayDataset(*blobs), batch_size=50, shuffle=True, seed=2)  # last batch is partial


def test_resume_is_bit_for_bit(tmp_path, blobs):
    straight = _resumable()
    straight.fit(_loader(blobs), epochs=2)

    first = _resumable()
    first.fit(_loader(blobs), epochs=1)
    path = tmp_path / "ck.npz"
    first.save(path)
    resumed = nn.Trainer.load(path, progress=False)
    assert (resumed.epoch, resumed.global_step, resumed.optimizer.step_count) == (1, 5, 5)
    resumed.fit(_loader(blobs), epochs=1)

    for (k, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert np.array_equal(a, b), k
    for k, a in straight.optimizer.state_dict().items():
        assert np.array_equal(a, resumed.optimizer.state_dict()[k]), k
    assert straight.history["batch_loss"] == resumed.history["batch_loss"]
    assert [f for f in os.listdir(tmp_path)] == ["ck.npz"]  # no temporary files left


def test_checkpoint_round_trip_and_predict(tmp_path, blobs):
    trainer = _resumable()
    trainer.fit(_loader(blobs), epochs=1)
    path = tmp_path / "model.npz"
    trainer.save(path)
    loaded = nn.Trainer.load(path, progress=False)
    X = blobs[0][:7]
    np.testing.assert_array_equal(loaded.predict(X), trainer.predict(X))
    with np.load(path, allow_pickle=False) as archive:  # plain arrays: loads without pickle
        assert str(archive["format"]) == "symdiff.nn checkpoint" and int(archive["version"]) == 1


def test_custom_models_load_with_model_given(tmp_path, blobs):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(6, 3)

        def forward(self, x):
            return self.a(x)

    nn.init.manual_seed(0)
    net = Net()
    trainer = nn.Trainer(net, nn.SoftmaxLoss(), nn.optim.SGD(net.parameters(), lr=0.1), backend="numpy",
                         progress=False)
    trainer.fit(_loader(blobs), epochs=1)
    trainer.save(tmp_path / "n.npz")
    with pytest.raises(CheckpointError, match="pass model="):
        nn.Trainer.load(tmp_path / "n.npz")
    other = Net()
    nn.Trainer.load(tmp_path / "n.npz", model=other)
    assert np.array_equal(other.a.weight.data, net.a.weight.data)


def test_broken_checkpoints(tmp_path, blobs):
    trainer = _resumable()
    trainer.fit(_loader(blobs), epochs=1)
    good = tmp_path / "good.npz"
    trainer.save(good)
    raw = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "garbage.npz").write_bytes(b"not a checkpoint at all")
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    np.save(tmp_path / "single.npy", np.zeros(3))
    arrays = dict(np.load(good, allow_pickle=False))
    arrays["version"] = np.array(99)
    np.savez(tmp_path / "future.npz", **arrays)
    arrays["version"] = np.array(1)
    arrays["model/layers.0.weight"] = np.zeros((2, 2), np.float32)
    np.savez(tmp_path / "mismatch.npz", **arrays)
    for name, message in [("truncated.npz", "not a readable checkpoint"), ("garbage.npz", "not a readable"),
                          ("foreign.npz", "not a symdiff.nn checkpoint"), ("single.npy", "single .npy"),
                          ("future.npz", "version 99"), ("mismatch.npz", "does not match its model")]:
        with pytest.raises(CheckpointError, match=message):
            nn.Trainer.load(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        nn.Trainer.load(tmp_path / "absent.npz")


def test_a_failed_save_leaves_the_old_file(tmp_path, blobs, monkeypatch):
    trainer = _resumable()
    trainer.fit(_loader(blobs), epochs=1)
    path = tmp_path / "ck.npz"
    trainer.save(path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        trainer.save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ck.npz"]


def test_bad_batches(tmp_path, blobs):
    X, y = blobs
    trainer = _resumable()
    path = tmp_path / "ck.npz"
    trainer.fit(_loader(blobs), epochs=1, checkpoint_path=path)
    saved = path.read_bytes()
    bad = X.copy()
    bad[60, 2] = np.nan  # row 10 of batch 1 (unshuffled)
    with pytest.raises(nn.TrainingError, match=r"epoch 2, batch 1: the features contain NaN or inf \(row 10"):
        trainer.fit(DataLoader(ArrayDataset(bad, y), batch_size=50), epochs=1, checkpoint_path=path)
    assert path.read_bytes() == saved  # the last good checkpoint is kept
    labels = y.copy()
    labels[3] = 3
    with pytest.raises(ValueError, match="label 3 is out of range for a model with 3 outputs"):
        trainer.fit(DataLoader(ArrayDataset(X, labels), batch_size=50), epochs=1)
    with pytest.raises(ValueError, match=r"features of shape \(5,\), but the model was built for \(6,\)"):
        trainer.fit(DataLoader(ArrayDataset(X[:, :5], y), batch_size=50), epochs=1)
    fresh = _resumable()
    with pytest.raises(ValueError, match="do not fit the model"):
        fresh.fit(DataLoader(ArrayDataset(X[:, :5], y), batch_size=50), epochs=1)


def test_divergence_stops_with_a_message(blobs):
    X, y = blobs
    nn.init.manual_seed(0)
    model = nn.Linear(6, 3)
    trainer = nn.Trainer(model, nn.MSELoss(), nn.optim.SGD(model.parameters(), lr=1e6), progress=False)
    Y = np.eye(3, dtype=np.float32)[y] * 1e3
    with pytest.raises(nn.TrainingError, match="training diverged"):
        trainer.fit(DataLoader(ArrayDataset(X, Y), batch_size=10), epochs=3)


def test_step_formulas_and_plot(tmp_path, blobs):
    trainer = _resumable()
    text = trainer.step_formulas((6,))
    assert "L = CE(" in text and "W1_new = " in text and "mu1_new" in text
    trainer.fit(_loader(blobs), epochs=2, plot=tmp_path / "curve.png", val_loader=DataLoader(ArrayDataset(*blobs), batch_size=240))
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(trainer.history["val_accuracy"]) == 2


def test_numpy_and_cpu_backends_agree(blobs):
    results = []
    for backend in ("numpy", "cpu"):
        nn.init.manual_seed(3)
        model = nn.Sequential(nn.Linear(6, 8), nn.Sigmoid(), nn.Linear(8, 3))
        trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.5),
                             backend=backend, progress=False)
        trainer.fit(_loader(blobs), epochs=1)
        results.append(model.state_dict())
    for k in results[0]:
        np.testing.assert_allclose(results[0][k], results[1][k], rtol=1e-4, atol=1e-5)
