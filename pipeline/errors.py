"""One small hierarchy of user-facing errors.

Every error a user can cause (a bad file, a bad spec, bad data) is a ``UserError``: the command
line prints its message on one line and exits with status 2, without a traceback. A failure while
running that is not the user's input (a diverging network, a bug) is a ``RunError`` (status 1).
"""

from __future__ import annotations


class NnpipeError(Exception):
    """Base of every error nnpipe raises on purpose."""

    exit_code = 1


class UserError(NnpipeError):
    """Bad input from the user: a file, a spec or data. Exit status 2."""

    exit_code = 2


class ConfigError(UserError):
    """A pipeline file (or an override) that does not validate.

    ``problems`` holds one line per problem, each naming the file, and for YAML the line, and the
    path of the field (``pipeline.yaml:12: stages[4].batch_size: must be greater than 0``), so that
    every problem is reported at once.
    """

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class DataError(UserError):
    """A data file that cannot be read as promised (truncated, wrong magic, mismatched counts)."""


class PluginError(UserError):
    """A plugin that cannot be found or loaded, or that registers the wrong kind of object."""


class RunError(NnpipeError):
    """A failure while running a stage that is not the input's fault (for example divergence)."""


class Stopped(NnpipeError):
    """A run its monitor stopped early (a tuner pruned it): nothing of it was cached or written.

    ``stage_id`` names the stage that was stopped, ``step`` the last step it reported."""

    def __init__(self, message: str, stage_id: str = "", step: int | None = None):
        super().__init__(message)
        self.stage_id = stage_id
        self.step = step
