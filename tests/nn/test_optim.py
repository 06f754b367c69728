"""Optimizers' trajectories against numpy implementations of the same formulas."""

import numpy as np
import pytest
from symdiff.nn.data import ArrayDataset, DataLoader

import symdiff as sd
from symdiff import nn

STEPS = 4


def numpy_sgd(lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    def update(p, g, state, t):
        g = g + weight_decay * p
        if momentum:
            state["v"] = momentum * state.get("v", 0.0) + g
            g = g + momentum * state["v"] if nesterov else state["v"]
        return p - lr * g
    return update


def numpy_adam(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False):
    def update(p, g, state, t):
        if weight_decay and not decoupled:
            g = g + weight_decay * p
        state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
        state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        m_hat, v_hat = state["m"] / (1 - b1 ** t), state["v"] / (1 - b2 ** t)
        if weight_decay and decoupled:
            p = p * (1 - lr * weight_decay)
        return p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return update


CASES = {
    "sgd": (lambda ps: nn.optim.SGD(ps, lr=0.1), numpy_sgd(0.1), "numpy"),
    "sgd-wd": (lambda ps: nn.optim.SGD(ps, lr=0.1, weight_decay=0.05), numpy_sgd(0.1, weight_decay=0.05), "numpy"),
    "momentum": (lambda ps: nn.optim.SGD(ps, lr=0.1, momentum=0.9), numpy_sgd(0.1, 0.9), "cpu"),
    "nesterov-wd": (lambda ps: nn.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
                    numpy_sgd(0.05, 0.8, True, 0.01), "numpy"),
    "adam": (lambda ps: nn.optim.Adam(ps, lr=0.01), numpy_adam(0.01), "cpu"),
    "adam-l2": (lambda ps: nn.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
                numpy_adam(0.01, 0.8, 0.99, weight_decay=0.1), "numpy"),
    "adamw": (lambda ps: nn.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
              numpy_adam(0.01, weight_decay=0.1, decoupled=True), "cpu"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_trajectory_matches_numpy(case):
    make, reference, backend = CASES[case]
    rng = np.random.default_rng(1)
    X = rng.normal(size=(16, 3)).astype(np.float32)
    Y = rng.normal(size=(16, 2)).astype(np.float32)
    nn.init.manual_seed(2)
    model = nn.Linear(3, 2)
    model.bias.data[:] = [0.3, -0.2]
    W, b = model.weight.data.astype(np.float64), model.bias.data.astype(np.float64)
    trainer = nn.Trainer(model, nn.MSELoss(), make(model.parameters()), backend=backend, progress=False)
    trainer.fit(DataLoader(ArrayDataset(X, Y), batch_size=16), epochs=STEPS)
    sW, sb = {}, {}
    Xd, Yd = X.astype(np.float64), Y.astype(np.float64)
    for t in range(1, STEPS + 1):
        d = 2 * (Xd @ W + b - Yd) / Y.size  # MSE's gradient, by hand
        W, b = reference(W, Xd.T @ d, sW, t), reference(b, d.sum(0), sb, t)
    np.testing.assert_allclose(model.weight.data, W, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.bias.data, b, rtol=1e-4, atol=1e-6)
    assert trainer.optimizer.step_count == STEPS


def test_update_is_an_expression_of_the_state():
    model = nn.Linear(2, 2, bias=False)
    opt = nn.optim.Adam(model.parameters(), lr=0.1)
    X = sd.tensor("X", ("m", 2), "float32")
    updates = opt.updates(sd.grad(sd.sum(model(X)), [p.leaf for p in model.parameters()]))
    assert sorted(leaf.name for leaf in updates) == ["W1", "m_W1", "v_W1"]
    assert [leaf.name for leaf in opt.leaves()] == ["m_W1", "v_W1", "lr", "t"]
    text = sd.pretty(sd.optimize(list(updates.values())))
    assert "√" in text or "sqrt" in text


def test_bad_hyperparameters():
    params = nn.Linear(2, 2).parameters()
    with pytest.raises(ValueError, match="lr must be"):
        nn.optim.SGD(params, lr=-1.0)
    with pytest.raises(ValueError, match="Nesterov"):
        nn.optim.SGD(params, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        nn.optim.Adam(params, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="twice"):
        nn.optim.SGD(params + params[:1])


def test_the_learning_rate_is_an_input_of_the_step(tmp_path):
    """Changing lr between steps changes the update and recompiles nothing; a MultiStepLR
    schedule is applied per epoch and kept by checkpoints."""
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=(8, 2)).astype(np.float32)
    loader = DataLoader(ArrayDataset(X, Y), batch_size=8)
    model = nn.Linear(3, 2)
    schedule = nn.optim.MultiStepLR([1, 2], gamma=0.5)
    trainer = nn.Trainer(model, nn.MSELoss(), nn.optim.SGD(model.parameters(), lr=0.2), backend="cpu",
                         progress=False, schedule=schedule)
    W = model.weight.data.astype(np.float64)
    b = model.bias.data.astype(np.float64)
    trainer.fit(loader, epochs=1)
    program = trainer._program("train")[0]
    trainer.fit(loader, epochs=2)
    assert trainer._program("train")[0] is program and list(trainer._programs) == ["train"]
    assert trainer.history["lr"] == pytest.approx([0.2, 0.1, 0.05])
    for lr in (0.2, 0.1, 0.05):
        d = 2 * (X @ W + b - Y) / Y.size
        W, b = W - lr * X.T @ d, b - lr * d.sum(0)
    np.testing.assert_allclose(model.weight.data, W, rtol=1e-5, atol=1e-6)
    ck = tmp_path / "ck.npz"
    trainer.save(ck)
    loaded = nn.Trainer.load(ck, progress=False)
    assert repr(loaded.schedule) == "MultiStepLR(milestones=[1, 2], gamma=0.5)"
    assert loaded.optimizer.lr == pytest.approx(0.05) and loaded.optimizer.config()["lr"] == 0.2
    with pytest.raises(ValueError, match="milestones must be increasing"):
        nn.optim.MultiStepLR([8, 3])
    with pytest.raises(ValueError, match="lr must be a finite number"):
        trainer.optimizer.lr = float("nan")
