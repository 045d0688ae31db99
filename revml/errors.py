"""revml's own exceptions: the errors a user can fix (bad data, bad options, bad files).

The command line maps exactly these (and ``ValueError`` from validation) to exit status 2
with a one-line message; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class RevmlError(Exception):
    """Base of every error revml raises for something the user can fix."""


class InvalidParameterError(RevmlError, ValueError, TypeError):
    """A parameter value outside its declared constraint (:mod:`revml.params`).

    Both a ``ValueError`` and a ``TypeError``, as scikit-learn's own
    ``InvalidParameterError``, so code catching either keeps working.
    """


class DataError(RevmlError, ValueError):
    """Input data revml cannot use as given (wrong shape, type, values or columns)."""


class FileError(RevmlError, OSError):
    """A file or folder that is missing, unreadable or not what revml expects there."""


class MissingDependencyError(RevmlError, ImportError):
    """An optional package a feature needs is not installed (the message names it)."""


class BackendUnavailableError(RevmlError, RuntimeError):
    """The execution path asked for cannot run here (e.g. Triton without a GPU)."""


class DataTypeError(DataError, TypeError):
    """Input of a type revml cannot read (sparse, non-numeric...): both a ``DataError``
    and the ``TypeError`` Python code expects for a wrong type."""


class MissingFileError(FileError, FileNotFoundError):
    """A file or folder named by the user does not exist."""


class UnknownColumnError(RevmlError, KeyError):
    """A column named by the user (markers, exclusions) is not in the data."""

    def __str__(self) -> str:  # KeyError's own str() wraps the message in quotes
        return str(self.args[0]) if self.args else ""
