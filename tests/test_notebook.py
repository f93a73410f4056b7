"""examples/notebook.ipynb: committed without outputs, and executed whole by a real Jupyter kernel
(nbclient + ipykernel) with no error cell, within two minutes on two cores."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOK = EXAMPLES / "notebook.ipynb"


def test_the_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "no code cells"
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_the_notebook_runs_without_an_error_cell(tmp_path, monkeypatch):
    # It runs beside the pipeline files it names, but its runs/ must land in tmp_path, and its
    # stage cache (the kernel inherits the environment) must not warm the suite's.
    monkeypatch.setenv("NNPIPE_CACHE", str(tmp_path / "cache"))
    for pipeline_file in EXAMPLES.glob("*.yaml"):
        (tmp_path / pipeline_file.name).symlink_to(pipeline_file)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    started = time.perf_counter()
    # allow_errors=False: an error in any cell raises CellExecutionError naming the cell.
    NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.perf_counter() - started
    assert seconds < 120, f"the notebook took {seconds:.0f}s"
    outputs = [output for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # the runs show themselves as HTML (metrics and inline curves), the figures as PNGs
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("accuracy" in page and "data:image/png;base64," in page for page in html)
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "most frequent mistake" in text and "true label" in text
    assert (tmp_path / "runs" / "mnist" / "report.html").is_file()
