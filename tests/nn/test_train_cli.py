"""`symdiff train` end to end (through the core CLI, which forwards to symdiff.nn.cli)."""

import subprocess
import sys
from pathlib import Path

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
