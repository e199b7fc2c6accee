"""Errors a user can cause and fix. The CLI prints them as one line and exits non-zero."""


class JaxmodelsError(Exception):
    """Base class: a problem with the user's input, stated with its fix; never a bug in jaxmodels."""


class ConfigError(JaxmodelsError):
    """A bad config key, value or name (model, dataset, optimizer, ...)."""


class DataError(JaxmodelsError):
    """A dataset that is missing, unprepared or malformed."""


class CheckpointError(JaxmodelsError):
    """A checkpoint that does not fit the configured model or cannot be read."""


class UnreadableFile(DataError):
    """A data file that does not decode (a truncated or damaged image); `data.skip_bad_files` may leave it out."""

    def __init__(self, message: str, path: object = None):
        super().__init__(message)
        self.path = path  # the file, for a count of those left out
