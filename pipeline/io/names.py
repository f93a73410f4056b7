"""Names from a pipeline file made safe to use as one folder or file name.

A pipeline's ``name`` ends up in paths (``runs/<name>-<time>``, ``runs/sweep-<name>-<time>``).
Validation accepts any text there, as it always did; what goes into a path is its *slug*: only
letters (any script), digits, ``.``, ``_`` and ``-``, no leading dot, at most 64 characters,
never empty. So
``../../x`` becomes ``x``, ``/etc/cron.d`` becomes ``etc-cron.d`` and the run directory always
lands directly under ``runs/``.
"""

from __future__ import annotations

import re

MAX_LENGTH = 64


def slug(name: str, fallback: str = "pipeline") -> str:
    """``name`` as a safe single path component (see the module's rules)."""
    text = re.sub(r"[^\w.-]+", "-", str(name))
    text = re.sub(r"\.{2,}", ".", text).strip(".-_")[:MAX_LENGTH].rstrip(".-_")
    return text or fallback
