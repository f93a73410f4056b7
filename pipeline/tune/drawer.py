"""The study's plots drawn by a helper process that imported the plotting libraries while the
trials ran.

Optuna's matplotlib visualisations import matplotlib, scikit-learn (fANOVA's forest) and
scipy.stats: about 2 s in a fresh process, against about 1 s to draw the three plots. A study
with a deadline pays that after its last trial, so the helper takes it out of that critical
path: it starts with the study, imports in a thread at the lowest CPU priority (nice 19 on
Linux, so on a machine the trials keep busy it only takes the CPU time nobody else wants), and
draws at normal priority when asked. If its imports are not done by then (no idle CPU while the
study ran) or it died, ``Drawer.result`` is None and the caller draws itself, as without a
helper.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

#: Set in the helper once its imports are done.
_WARM = threading.Event()
#: How long a draw waits for imports still running (then the caller draws instead: a study
#: too short for the helper's imports gains nothing by waiting for them).
WAIT_SECONDS = 0.5


def _import_plotting(url: str) -> None:
    """The helper's warm-up thread: lowest priority, then every module the plots import and
    the study's storage (opening it imports SQLAlchemy's dialect: 0.7 s)."""
    try:
        if sys.platform.startswith("linux"):  # a thread's own nice value (Linux only)
            import os

            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
        import optuna.importance  # noqa: F401 - fANOVA: scikit-learn, scipy.stats
        import optuna.visualization.matplotlib  # noqa: F401

        from pipeline.tune import plots  # noqa: F401
        from pipeline.tune.trial import storage_for

        _first_draw(matplotlib.pyplot)

        storage_for(url)
    finally:
        _WARM.set()  # a failed import fails the draw, which then falls back


def _first_draw(plt) -> None:
    """Draw and save a throwaway figure with text: the first draw of a process loads the fonts
    and sets up the text layout (0.17 s of the three plots' 1.16 s otherwise, measured)."""
    import io

    figure, axes = plt.subplots()
    axes.plot([0, 1], [0, 1], label="x")
    axes.set_title("Objective Value")
    axes.legend()
    figure.savefig(io.BytesIO(), dpi=90, bbox_inches="tight", format="png")
    plt.close(figure)


def warm(url: str) -> None:
    """Start the warm-up thread (the helper's first task; returns at once)."""
    threading.Thread(target=_import_plotting, args=(url,), name="nnpipe-plot-imports",
                     daemon=True).start()


def draw_in_helper(url: str, study_name: str, folder: str, wait: float = WAIT_SECONDS):
    """Draw the study's plots (``write_plots``) if the imports are done within ``wait``
    seconds; None if not."""
    if not _WARM.wait(wait):
        return None
    import optuna

    from pipeline.tune.plots import write_plots
    from pipeline.tune.trial import storage_for

    study = optuna.load_study(study_name=study_name, storage=storage_for(url))
    return write_plots(study, Path(folder))


class Drawer:
    """A helper process for the study's plots (``with Drawer(url, name) as drawer``)."""

    def __init__(self, url: str, study_name: str):
        self.url, self.study_name = url, study_name
        self.executor = None
        self.drew = False  # the helper drew: it is idle and exits when asked

    def __enter__(self) -> "Drawer":
        from joblib.externals.loky import ProcessPoolExecutor

        try:  # its own executor: the trials' reusable one is not touched
            self.executor = ProcessPoolExecutor(max_workers=1)
            self.executor.submit(warm, self.url)
        except Exception:  # no helper (a sandbox without processes): the caller draws
            self.executor = None
        return self

    def submit(self, folder: Path, wait: float = WAIT_SECONDS):
        """Ask the helper to draw into ``folder`` (if its imports are done within ``wait``
        seconds); a future (None without a helper)."""
        if self.executor is None:
            return None
        try:
            return self.executor.submit(draw_in_helper, self.url, self.study_name, str(folder),
                                        wait)
        except Exception:
            return None

    def result(self, future):
        """What ``submit``'s future drew, ``(written, notes)``, or None: the caller draws."""
        if future is None:
            return None
        try:
            drawn = future.result()
        except Exception:  # the helper died or could not draw
            return None
        self.drew = drawn is not None
        return drawn

    def __exit__(self, *exc) -> None:
        if self.executor is not None:
            # an idle helper exits when asked; one still importing is killed (it would finish
            # its imports first, seconds after the study)
            self.executor.shutdown(wait=False, kill_workers=not self.drew)
