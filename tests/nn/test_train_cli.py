"""`symdiff train` end to end (through the core CLI, which forwards to symdiff.nn.cli)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from symdiff.lowering import cuda

from symdiff import cli, nn


def test_train_digits_with_checkpoint_plot_and_resume(tmp_path, digits, capsys):
    ck, png = tmp_path / "ck.npz", tmp_path / "curve.png"
    code = cli.main(["train", "--dataset", "digits", "--model", "mlp", "--hidden", "32", "--epochs", "2",
                     "--optimizer", "adam", "--lr", "0.01", "--checkpoint", str(ck), "--plot", str(png),
                     "--print-step", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "L = CE(" in out and "W1_new = W₁ − " in out and "m_W1_new" in out
    accuracy = float(out.split("test accuracy ")[-1].split()[0])
    assert accuracy > 0.85, out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert nn.Trainer.load(ck).epoch == 2
    code = cli.main(["train", "--dataset", "digits", "--resume", str(ck), "--epochs", "1", "--no-progress"])
    assert code == 0 and "epoch   3" in capsys.readouterr().out


def test_train_idx_folder_softmax(mnist_paths, tmp_path, capsys):
    folder = str(tmp_path)
    for path in mnist_paths:
        (tmp_path / Path(path).name).write_bytes(Path(path).read_bytes())
    code = cli.main(["train", "--dataset", f"idx:{folder}", "--model", "softmax", "--epochs", "1",
                     "--batch", "100", "--lr", "0.5", "--holdout", "0.2", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "8000 training, 2000 test" in out
    assert float(out.split("test accuracy ")[-1].split()[0]) > 0.85


def test_bad_arguments_are_clear_errors(tmp_path, digits, capsys):
    assert cli.main(["train", "--dataset", "nowhere"]) == 2
    assert "unknown dataset 'nowhere'" in capsys.readouterr().err
    (tmp_path / "broken.npz").write_bytes(b"nope")
    assert cli.main(["train", "--dataset", "digits", "--resume", str(tmp_path / "broken.npz")]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    assert cli.main(["train", "--dataset", f"idx:{tmp_path}"]) == 2
    assert "no train- or t10k-images" in capsys.readouterr().err


def test_help_through_the_installed_command():
    result = subprocess.run([sys.executable, "-m", "symdiff.cli", "train", "--help"], capture_output=True,
                            text=True, check=True)
    assert "--print-step" in result.stdout and "mnist-sample" in result.stdout


# -- mistakes on the command line: one clear line, before any training -----------------------

def _train(capsys, *args):
    """(exit code, stdout, stderr) of `symdiff train --dataset digits --epochs 1 --no-progress ...`."""
    code = cli.main(["train", "--dataset", "digits", "--epochs", "1", "--no-progress", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, out, err, message):
    assert code == 2, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("symdiff train: error: ") and message in err, err
    assert "epoch" not in out, out  # refused before training


def test_output_paths_are_checked_before_training(tmp_path, digits, capsys):
    (tmp_path / "file").write_text("a file where a folder should be")
    os.mkfifo(tmp_path / "fifo")
    cases = [
        (["--checkpoint", str(tmp_path)], f"--checkpoint: {tmp_path} is a directory"),
        (["--checkpoint", str(tmp_path / "missing" / "ck.npz")], f"the folder {tmp_path / 'missing'} does not exist"),
        (["--checkpoint", str(tmp_path / "file" / "ck.npz")], f"{tmp_path / 'file'} is not a folder"),
        (["--plot", str(tmp_path)], f"--plot: {tmp_path} is a directory"),
        (["--plot", str(tmp_path / "missing" / "curve.png")], f"the folder {tmp_path / 'missing'} does not exist"),
        (["--checkpoint", str(tmp_path / "fifo")], f"{tmp_path / 'fifo'} exists and is not a regular file"),
    ]
    for args, message in cases:
        _one_line_error(*_train(capsys, *args), message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "file"]


@pytest.mark.parametrize("args, message", [
    (["--epochs", "-1"], "--epochs must be >= 1, got -1"),
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["--hidden", "0"], "--hidden must be >= 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--holdout", "1.5"], "--holdout must be between 0 and 1 (exclusive), got 1.5"),
    (["--holdout", "0"], "--holdout must be between 0 and 1 (exclusive), got 0.0"),
    (["--lr", "-1"], "--lr must be a finite number > 0, got -1.0"),
    (["--lr", "0"], "--lr must be a finite number > 0, got 0.0"),
    (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["--momentum", "inf"], "--momentum must be a finite number >= 0, got inf"),
    (["--weight-decay", "-0.1"], "--weight-decay must be a finite number >= 0, got -0.1"),
    (["--dropout", "1"], "--dropout must be in [0, 1), got 1.0"),
    (["--seed", "-1"], "--seed must be in [0, 2**64), got -1"),
    (["--model", "softmax", "--hidden", "8"], "--hidden applies to --model mlp, not softmax"),
    (["--model", "softmax", "--dropout", "0.5"], "--dropout applies to --model mlp, not softmax"),
    (["--optimizer", "adam", "--momentum", "0.5"], "--momentum applies to --optimizer sgd, not adam"),
    (["--optimizer", "adamw", "--nesterov"], "--nesterov applies to --optimizer sgd, not adamw"),
    (["--momentum", "0", "--nesterov"], "Nesterov momentum needs momentum > 0"),
    (["--test", "nowhere"], "unknown dataset 'nowhere'"),
    (["--resume", "absent.npz"], "no such checkpoint: absent.npz"),
    (["--resume", "/"], "/ is a directory, not a checkpoint file"),
    (["--hidden", str(10**12)], "out of memory"),
])
def test_every_bad_argument_is_one_clear_line(args, message, digits, capsys):
    _one_line_error(*_train(capsys, *args), message)


def test_an_interrupted_run_ends_in_one_line(digits, capsys, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nn.Trainer, "fit", interrupt)
    code, _, err = _train(capsys)
    assert code == 130 and err == "symdiff train: interrupted\n", err


@pytest.mark.skipif(cuda.device_available(), reason="this machine has a CUDA device")
def test_cuda_without_a_device_is_one_clear_line(digits, capsys, monkeypatch):
    _one_line_error(*_train(capsys, "--backend", "cuda"), "--backend cuda: no CUDA device")
    monkeypatch.setenv("SYMDIFF_NVCC", "/nowhere/nvcc")
    _one_line_error(*_train(capsys, "--backend", "cuda"), "SYMDIFF_NVCC='/nowhere/nvcc' does not exist")


def test_progress_bars_only_on_a_terminal(digits, capsys, monkeypatch):
    code = cli.main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1"])
    out, err = capsys.readouterr()
    assert code == 0 and "epoch   1" in out and err == "", err  # stderr is a pipe here: no bars
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert cli.main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1"]) == 0
    assert "epoch 1: 100%" in capsys.readouterr().err  # a terminal gets them
    assert cli.main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_training_into_a_pipe_has_no_progress_bars():
    result = subprocess.run([sys.executable, "-m", "symdiff.cli", "train", "--dataset", "digits", "--hidden", "8",
                             "--epochs", "1"], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and "\r" not in result.stdout


# -- resuming ----------------------------------------------------------------------------------

def test_resume_refuses_flags_that_conflict_with_the_checkpoint(tmp_path, digits, capsys):
    ck = tmp_path / "ck.npz"
    code, out, err = _train(capsys, "--optimizer", "adam", "--lr", "0.01", "--hidden", "16", "--seed", "3",
                            "--checkpoint", str(ck))
    assert code == 0, err
    conflicts = [
        (["--lr", "0.1"], "--lr 0.1 conflicts with the checkpoint"),
        (["--optimizer", "sgd"], "--optimizer sgd conflicts with the checkpoint"),
        (["--model", "softmax"], "--model softmax conflicts with the checkpoint"),
        (["--hidden", "32"], "--hidden 32 conflicts with the checkpoint"),
        (["--dropout", "0.2"], "--dropout 0.2 conflicts with the checkpoint"),
        (["--seed", "4"], "--seed 4 conflicts with the checkpoint"),
        (["--weight-decay", "0.1"], "--weight-decay 0.1 conflicts with the checkpoint"),
    ]
    saved = {"--lr": "lr 0.01", "--optimizer": "optimizer adam", "--model": "model mlp", "--hidden": "hidden 16",
             "--dropout": "dropout 0.0", "--seed": "seed 3", "--weight-decay": "weight-decay 0.0"}
    for args, message in conflicts:
        code, out, err = cli.main(["train", "--dataset", "digits", "--resume", str(ck), "--no-progress", *args]), \
            *capsys.readouterr()
        _one_line_error(code, out, err, message)
        assert f"{ck}, which was trained with {saved[args[0]]}" in err, err
    assert nn.Trainer.load(ck).epoch == 1  # untouched
    # flags that agree with the checkpoint are fine; the saved run continues
    code = cli.main(["train", "--dataset", "digits", "--resume", str(ck), "--lr", "0.01", "--optimizer", "adam",
                     "--hidden", "16", "--epochs", "1", "--checkpoint", str(ck), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "epoch   2" in out and "Adam(lr=0.01" in out
    assert nn.Trainer.load(ck).seed == 3  # the saved seed, without --seed
