"""Errors the engine raises. Each message names the problem and the fix, on one line."""


class LandcoverError(Exception):
    """Bad input or configuration, reported to the user as one line (CLI exit code 2)."""


class ModelError(LandcoverError):
    """An ONNX model that cannot be read, or whose metadata does not follow the schema."""


class Cancelled(Exception):
    """The user cancelled the run (or the process was asked to stop); nothing was written.

    Not a ``LandcoverError``: every host treats it the same way — it stops quietly, reports
    "cancelled" and leaves no output (CLI exit status 130)."""
