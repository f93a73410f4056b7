"""Who is running a trial: the host, the pid and when that process started.

A pid alone is not a process: once a process dies, the system may give its pid to another one,
and a trial whose owner died would then look alive for ever (its study refused). So an owner is
``host:pid:start``, where ``start`` is the boot id and the start time of the process in clock
ticks since boot (``/proc/<pid>/stat``, field 22): a pid now held by a process that started at
another time, or in another boot, is not the owner. Where ``/proc`` is missing, ``start`` is
empty and the pid alone is compared (as owners recorded by older nnpipe versions, ``host:pid``).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def process_start(pid: int) -> str:
    """``<boot id>-<start ticks>`` of process ``pid``; empty when it cannot be told."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rfind(")") + 2:].split()
    return f"{boot}-{fields[19]}" if len(fields) > 19 else ""


def this_owner() -> str:
    """This process as a trial's owner: ``host:pid:start``."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start(pid)}"


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def alive(owner: str) -> bool | None:
    """True when ``owner`` is a process running on this host, False when it is gone (or its pid
    is now another process's); None for an owner on another host (cannot tell)."""
    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    if not _pid_runs(int(pid)):
        return False
    return not start or process_start(int(pid)) in (start, "")
