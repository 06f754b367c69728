"""Gradient clipping by global norm and cosine annealing, against numpy and PyTorch."""

import math

import numpy as np
import pytest
from symdiff.nn.data import ArrayDataset, DataLoader

from symdiff import nn

STEPS = 4


def _data(seed=1, n=16):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), 3 * rng.normal(size=(n, 2))


def _linear(dtype="float64"):
    nn.init.manual_seed(2)
    model = nn.Linear(3, 2, dtype=dtype)
    model.bias.data[:] = [0.3, -0.2]
    return model


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("clip", [0.05, 100.0])
def test_sgd_clip_matches_numpy(backend, clip):
    X, Y = _data()
    model = _linear()
    W, b = model.weight.data.copy(), model.bias.data.copy()
    opt = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, clip_norm=clip)
    trainer = nn.Trainer(model, nn.MSELoss(), opt, backend=backend, progress=False)
    trainer.fit(DataLoader(ArrayDataset(X, Y), batch_size=len(X)), epochs=STEPS)
    vW, vb = np.zeros_like(W), np.zeros_like(b)
    for _ in range(STEPS):
        d = 2 * (X @ W + b - Y) / Y.size
        gW, gb = X.T @ d, d.sum(0)
        scale = min(1.0, clip / (math.sqrt((gW ** 2).sum() + (gb ** 2).sum()) + 1e-6))
        vW, vb = 0.9 * vW + scale * gW, 0.9 * vb + scale * gb
        W, b = W - 0.1 * vW, b - 0.1 * vb
    np.testing.assert_allclose(model.weight.data, W, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.bias.data, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", ["sgd", "adam", "adamw"])
def test_clip_matches_pytorch(make):
    torch = pytest.importorskip("torch")
    X, Y = _data(3)
    nn.init.manual_seed(4)
    model = nn.Sequential(nn.Linear(3, 5, dtype="float64"), nn.Tanh(), nn.Linear(5, 2, dtype="float64"))
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
    with torch.no_grad():
        for ours, theirs in ((model.layers[0], tmodel[0]), (model.layers[2], tmodel[2])):
            theirs.weight.copy_(torch.from_numpy(ours.weight.data.T.copy()))  # ours is (in, out)
            theirs.bias.copy_(torch.from_numpy(ours.bias.data.copy()))
    if make == "sgd":
        opt = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, clip_norm=0.5)
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    elif make == "adam":
        opt = nn.optim.Adam(model.parameters(), lr=0.05, weight_decay=0.01, clip_norm=0.5)
        topt = torch.optim.Adam(tmodel.parameters(), lr=0.05, weight_decay=0.01)
    else:
        opt = nn.optim.AdamW(model.parameters(), lr=0.05, clip_norm=0.5)
        topt = torch.optim.AdamW(tmodel.parameters(), lr=0.05)
    trainer = nn.Trainer(model, nn.MSELoss(), opt, backend="cpu", progress=False)
    trainer.fit(DataLoader(ArrayDataset(X, Y), batch_size=len(X)), epochs=STEPS)
    tX, tY = torch.from_numpy(X), torch.from_numpy(Y)
    norms = []
    for _ in range(STEPS):
        topt.zero_grad()
        torch.nn.functional.mse_loss(tmodel(tX), tY).backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(tmodel.parameters(), 0.5)))
        topt.step()
    assert max(norms) > 0.5  # the clipping acted
    for ours, theirs in ((model.layers[0], tmodel[0]), (model.layers[2], tmodel[2])):
        np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy().T, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours.bias.data, theirs.bias.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_clip_prints_and_checkpoints(tmp_path):
    model = _linear("float32")
    trainer = nn.Trainer(model, nn.MSELoss(), nn.optim.Adam(model.parameters(), clip_norm=1.0), progress=False,
                         schedule=nn.optim.CosineAnnealingLR(5, eta_min=1e-4))
    X, Y = _data()
    trainer.fit(DataLoader(ArrayDataset(X.astype(np.float32), Y.astype(np.float32)), batch_size=8), epochs=2)
    text = trainer.step_formulas()
    assert "minimum(1, 1 / (1e-06 + √(" in text, text
    ck = tmp_path / "ck.npz"
    trainer.save(ck)
    loaded = nn.Trainer.load(ck, progress=False)
    assert loaded.optimizer.clip_norm == 1.0 and repr(loaded.optimizer).endswith("clip_norm=1.0)")
    assert repr(loaded.schedule) == "CosineAnnealingLR(T_max=5, eta_min=0.0001)"
    assert loaded.optimizer.lr == pytest.approx(trainer.optimizer.lr)
    assert "clip_norm" not in nn.optim.SGD(model.parameters()).config()
    with pytest.raises(ValueError, match="clip_norm must be a finite number > 0"):
        nn.optim.SGD(model.parameters(), clip_norm=0.0)


def test_cosine_schedule_runs_without_recompiling():
    X, Y = _data()
    model = _linear("float32")
    trainer = nn.Trainer(model, nn.MSELoss(), nn.optim.SGD(model.parameters(), lr=0.2), progress=False,
                         schedule=nn.optim.CosineAnnealingLR(3))
    loader = DataLoader(ArrayDataset(X.astype(np.float32), Y.astype(np.float32)), batch_size=16)
    trainer.fit(loader, epochs=1)
    program = trainer._program("train")[0]
    trainer.fit(loader, epochs=3)
    assert trainer._program("train")[0] is program
    assert trainer.history["lr"] == pytest.approx([0.2 * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(4)])


def test_cosine_matches_pytorch():
    torch = pytest.importorskip("torch")
    for T_max, eta_min in ((5, 0.0), (7, 0.001), (1, 0.0)):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=0.1)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=T_max, eta_min=eta_min)
        ours = nn.optim.CosineAnnealingLR(T_max, eta_min)
        for epoch in range(3 * T_max + 2):
            assert ours.lr(0.1, epoch) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-12), epoch
            opt.step()
            sched.step()


def test_cosine_bad_arguments():
    with pytest.raises(ValueError, match="T_max must be"):
        nn.optim.CosineAnnealingLR(0)
    with pytest.raises(ValueError, match="eta_min must be"):
        nn.optim.CosineAnnealingLR(3, eta_min=-1.0)


def test_cli_lr_cosine_trains_and_resumes(tmp_path, digits, capsys):
    from symdiff import cli
    ck = tmp_path / "mlp.npz"
    base = ["train", "--dataset", "digits", "--no-progress", "--backend", "numpy", "--hidden", "16"]
    code = cli.main([*base, "--epochs", "2", "--lr-cosine", "4", "--checkpoint", str(ck)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "CosineAnnealingLR(T_max=4, eta_min=0.0)" in out
    lrs = [float(line.split()[-1]) for line in out.splitlines() if line.startswith("epoch ")]
    assert lrs == pytest.approx([0.05, 0.05 * (1 + math.cos(math.pi / 4)) / 2], rel=1e-4)
    code = cli.main([*base, "--epochs", "3", "--resume", str(ck), "--lr-cosine", "5"])
    out, err = capsys.readouterr()
    assert code != 0 and "lr-cosine 4" in err, err
    code = cli.main([*base, "--epochs", "1", "--lr-cosine", "4", "--lr-step", "2"])
    out, err = capsys.readouterr()
    assert code != 0 and "--lr-step and --lr-cosine" in err, err
