"""examples/notebook.ipynb: committed without outputs, and executed whole by a real Jupyter kernel
(nbclient + ipykernel) with no error cell, within two minutes on two cores: the kernel's CPU time
always, the wall clock too when the machine is not busy with other work."""

from __future__ import annotations

import os
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
    # one extra cell, last: the kernel's own CPU seconds (all its threads), which other processes
    # sharing the machine do not inflate
    notebook.cells.append(nbformat.v4.new_code_cell("import time; print('cpu', time.process_time())"))
    load = os.getloadavg()[0]
    started = time.perf_counter()
    # allow_errors=False: an error in any cell raises CellExecutionError naming the cell.
    NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.perf_counter() - started
    cpu = float(notebook.cells.pop().outputs[0]["text"].split()[1])
    assert cpu < 120, f"the notebook's kernel used {cpu:.0f} CPU seconds"
    if load <= (os.cpu_count() or 1):  # the wall clock means something only on a machine not
        assert seconds < 120, f"the notebook took {seconds:.0f}s"  # shared with other work
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
