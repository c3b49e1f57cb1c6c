"""Errors a user can cause. Each carries one line that names the thing and the fix."""

import errno

STORAGE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM)
"""A full disk or quota, a file over the size limit (``ulimit -f``), a read-only file system, no permission:
the machine's state, not a bug."""


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


def storage_error(err: OSError, where: str, fix: str) -> AmodalError | None:
    """A full disk or a folder that cannot be written, as one line naming the file (else ``where``) and the
    ``fix``; None for any other ``OSError``."""
    if err.errno not in STORAGE_ERRORS:
        return None
    return AmodalError(f"{err.filename or where}: {err.strerror}; {fix}")


class ModelOutputError(AmodalError):
    """A model whose output is unusable (NaN or inf): every later object would be garbage too, so the run stops."""
