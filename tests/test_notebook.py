"""docs/tour.ipynb runs top to bottom (nbclient, this venv's python3 kernel) and is committed without outputs."""

import json
import pathlib

import pytest

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "docs" / "tour.ipynb"


def test_committed_notebook_has_no_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_tour_notebook_executes():
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install 'symdiff[notebook]')")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install 'symdiff[notebook]')")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed: no python3 kernel to run the notebook")
    pytest.importorskip("sklearn", reason="the tour trains on sklearn's digits")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()  # raises on a cell error
    texts = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert not [o for o in cell.outputs if o.output_type == "error"]
        texts.append("\n".join(o.get("text", "") + str(o.get("data", {}).get("text/latex", ""))
                               for o in cell.outputs))
    text = "\n".join(texts)
    assert "∂L/∂W = Xᵀ·(softmax(X·W) − onehot(y)) / m" in text
    assert "\\begin{aligned}" in text  # the MLP's gradient list rendered as LaTeX
    assert "| mode |" in text and "crossover at m = n" in text
    assert "∂q/∂x = (M + Mᵀ)·x" in text
    assert "3 forward products instead of 6" in text
    loss = next(line for line in text.splitlines() if line.startswith("loss ["))
    first, last = (float(v) for v in loss[len("loss ["):-1].split(","))
    assert last < first
