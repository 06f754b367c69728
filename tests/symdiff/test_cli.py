"""The symdiff command line end to end."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from symdiff.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_eval_parses_shows_the_graph_and_evaluates(capsys):
    code, out, _ = run(capsys, "eval", "sin(x)*exp(y) + x**2", "x=1", "y=2")
    assert code == 0
    assert "expression   sin(x)*exp(y) + x**2" in out
    assert "4 in the shared graph" in out or "operations" in out
    assert "value        7.2176763124" in out


def test_eval_with_json_arrays_makes_tensors(capsys):
    code, out, _ = run(capsys, "eval", "sum(X*X)", "X=[[1,2],[3,4]]")
    assert code == 0 and "value        30." in out


def test_grad_prints_formulas_and_values(capsys):
    code, out, _ = run(capsys, "grad", "x*y + sin(x)", "--wrt", "x", "y", "--at", "x=0", "y=3")
    assert code == 0
    assert "∂f/∂x" in out and "∂f/∂y = x" in out
    assert "∂f/∂x at the point = 4." in out


def test_compare_prints_the_table_and_writes_a_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "modes.png"
    code, out, _ = run(capsys, "compare", "sin(x)*exp(y) + x**2", "--wrt", "x", "y", "--at", "x=0.3", "y=-0.7",
                       "--plot", str(png))
    assert code == 0
    assert "| reverse |" in out and "| forward |" in out and "| numeric |" in out
    assert png.stat().st_size > 5000


@pytest.mark.parametrize("argv,message", [
    (["eval", "__import__('os')"], "parse error"),
    (["eval", "x + y", "x=1"], "no value for y"),
    (["grad", "x*y", "--wrt", "z", "--at", "x=1"], "do not appear in the expression"),
    (["eval", "x", "x=abc"], None),
])
def test_bad_input_is_a_clear_error_not_a_traceback(capsys, argv, message):
    if message is None:
        with pytest.raises(SystemExit, match="must be a number or a JSON list"):
            main(argv)
        return
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_the_console_script_is_installed():
    beside = Path(sys.executable).parent / "symdiff"
    exe = str(beside) if beside.exists() else shutil.which("symdiff")
    assert exe is not None, "pip should have installed the symdiff console script"
    done = subprocess.run([exe, "eval", "x*2", "x=21"], capture_output=True, text=True, check=True)
    assert "value        42." in done.stdout
