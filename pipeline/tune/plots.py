"""Optuna's matplotlib visualisations of a study, saved as PNG files in ``plots/``.

Parameter importances use Optuna's default evaluator (fANOVA, which needs scikit-learn) and fall
back to PED-ANOVA (numpy only) when scikit-learn is missing. A plot the study cannot have yet
(importances need two complete trials) is skipped with a note, never an error.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from pipeline.files import atomic_open


def _importances(study, visualize):
    try:
        import sklearn  # noqa: F401 - fANOVA's random forest
    except ImportError:
        from optuna.importance import PedAnovaImportanceEvaluator

        return visualize.plot_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
    return visualize.plot_param_importances(study)


def write_plots(study, folder: Path) -> tuple[list[Path], list[str]]:
    """Write the optimisation history, parameter importances and parallel coordinates;
    return the files written and a note per plot that could not be made."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as visualize

    import optuna

    makers = {"optimization_history": visualize.plot_optimization_history,
              "param_importances": lambda s: _importances(s, visualize),
              "parallel_coordinate": visualize.plot_parallel_coordinate}
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials(
            deepcopy=False)):  # each plot would only log that it has nothing to show
        return [], [f"{name}: not drawn (no complete trial)" for name in makers]
    folder.mkdir(parents=True, exist_ok=True)
    written, notes = [], []
    for name, make in makers.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "experimental" warnings from Optuna
                axes = make(study)
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            path = folder / f"{name}.png"
            with atomic_open(path, "wb") as handle:  # nnpipe's temporary name, then renamed
                figure.savefig(handle, dpi=90, bbox_inches="tight", format="png")
            plt.close(figure)
            written.append(path)
        except Exception as exc:  # too few trials, a single parameter, ...
            notes.append(f"{name}: not drawn ({type(exc).__name__}: {exc})".splitlines()[0])
        finally:
            plt.close("all")
    return written, notes
