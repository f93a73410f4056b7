"""Checks that an allocation fits in memory before it is attempted.

A dataset converted to float64 can need eight times the memory of its uint8 file; finding that
out from the kernel's out-of-memory killer loses the whole run. Stages call ``require_memory``
with the size they are about to allocate and get a clear error instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import DataError


def available_memory() -> int | None:
    """Bytes a new allocation can get now, or None when nothing says: the least of the system's
    ``MemAvailable``, the cgroup's limit less its use, and ``RLIMIT_AS`` less this process's
    address space (so a process started under ``ulimit -v`` or ``setrlimit`` gets a clear
    error, not a ``MemoryError``)."""
    found = [value for value in (_system_available(), _cgroup_headroom(), _rlimit_headroom())
             if value is not None]
    return max(0, min(found)) if found else None


def _system_available() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_headroom() -> int | None:
    """cgroup v2 ``memory.max`` less ``memory.current`` (a container's limit), or None."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return None


def _rlimit_headroom() -> int | None:
    """The soft ``RLIMIT_AS`` less the address space in use (``/proc/self/statm``), or None."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm") as handle:
            used = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        return soft - used
    except (ImportError, OSError, ValueError, IndexError):
        return None


def human_bytes(count: int) -> str:
    """``1536`` -> ``1.5 KB``; powers of 1024 with the usual short names, any size of int."""
    count = int(count)
    if count < 1024:
        return f"{count} B"
    for power, unit in ((4, "TB"), (3, "GB"), (2, "MB"), (1, "KB")):
        if count >= 1024 ** power or unit == "KB":
            whole = count // 1024 ** power  # exact for ints of any size
            if whole >= 10 ** 6:  # too large for a float: scientific notation from the digits
                digits = str(whole)
                return f"{digits[0]}.{digits[1:3]}e{len(digits) - 1} {unit}"
            return f"{count / 1024 ** power:.1f} {unit}"
    raise AssertionError("unreachable")


def require_memory(nbytes: int, what: str,
                   hint: str = "use a smaller dataset or dtype float32") -> None:
    """Raise a DataError naming ``what`` if ``nbytes`` exceed the memory available now."""
    available = available_memory()
    if available is not None and nbytes > available:
        raise DataError(f"{what} needs {human_bytes(nbytes)} but only {human_bytes(available)} "
                        f"of memory is available; {hint}")
