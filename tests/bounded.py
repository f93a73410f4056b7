"""Run ``nnpipe`` in a child process under an address-space limit and a wall-time timeout, and
report what it cost: exit status, stderr, peak resident memory (``wait4``'s rusage of that child
alone) and wall seconds. Used by the bomb tests: a hostile input must be refused quickly and
cheaply, not merely eventually."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: The child's address-space limit: nnpipe itself needs about 0.5 GB of it (numpy, matplotlib).
LIMIT_AS = 1536 << 20


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    peak_mb: float
    seconds: float

    def error_line(self) -> str:
        """The one ``error:`` line on stderr (asserts there is exactly one line, no traceback)."""
        lines = self.stderr.strip().splitlines()
        assert "Traceback" not in self.stderr, self.stderr
        assert len(lines) == 1 and lines[0].startswith("error: "), self.stderr
        return lines[0]


def run_bounded(*args: str, cwd: Path | None = None, timeout: float = 60.0,
                limit: int = LIMIT_AS) -> Outcome:
    """``python -m pipeline.cli ARGS`` under ``RLIMIT_AS = limit``, killed after ``timeout``."""

    def limit_child() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", COLUMNS="200")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], cwd=cwd,
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                 preexec_fn=limit_child)
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                child.send_signal(signal.SIGKILL)
                pid, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        out.seek(0)
        err.seek(0)
        return Outcome(child.returncode, out.read().decode(errors="replace"),
                       err.read().decode(errors="replace"), usage.ru_maxrss / 1024, seconds)
