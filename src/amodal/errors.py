"""Errors a user can cause. Each carries one line that names the thing and the fix."""


class AmodalError(Exception):
    """A problem with the user's config, data or models, said in one line; the CLIs print it without a trace."""


class ConfigError(AmodalError):
    """A config value that cannot work."""


class DatasetError(AmodalError):
    """A dataset folder or annotation file that cannot be read."""


class SampleError(AmodalError):
    """One object that cannot be evaluated (bad mask, missing file); the run records it as skipped."""


class ModelNotFoundError(AmodalError):
    """A model or checkpoint that is not on this machine."""
