"""Run ``nnpipe`` in a child process under an address-space limit and a wall-time timeout, and
report what it cost: exit status, stderr, peak resident memory (``wait4``'s rusage of that child
alone) and wall seconds. Used by the bomb tests: a hostile input must be refused quickly and
cheaply, not merely eventually."""

from __future__ import annotations

import os
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


#: Run by a small Python of its own: fork the nnpipe child under the limit, wait for it, and
#: write its exit status and peak resident memory into a file. ``ru_maxrss`` of a process
#: forked from pytest would count pytest's own resident memory (the kernel keeps the high-water
#: mark of the memory the child had before its exec), so the child is forked from this launcher,
#: which is a few MB, not from the test process.
LAUNCHER = """
import os, resource, sys
limit, report = int(sys.argv[1]), sys.argv[2]
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.execv(sys.executable, [sys.executable, "-m", "pipeline.cli", *sys.argv[3:]])
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as handle:
    handle.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run_bounded(*args: str, cwd: Path | None = None, timeout: float = 60.0,
                limit: int = LIMIT_AS) -> Outcome:
    """``python -m pipeline.cli ARGS`` under ``RLIMIT_AS = limit``, killed after ``timeout``;
    its peak memory is the child's own (see ``LAUNCHER``)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", COLUMNS="200")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "outcome"
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(limit), str(report), *args],
                                 cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 env=env, start_new_session=True)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # the launcher and the nnpipe child with it
            child.wait()
        seconds = time.perf_counter() - started
        code, peak_kb = (int(v) for v in report.read_text().split()) if report.exists() \
            else (-signal.SIGKILL, 0)
        out.seek(0)
        err.seek(0)
        return Outcome(code, out.read().decode(errors="replace"),
                       err.read().decode(errors="replace"), peak_kb / 1024, seconds)
