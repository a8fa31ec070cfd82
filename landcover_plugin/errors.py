"""Errors the engine raises. Each message names the problem and the fix, on one line."""


class LandcoverError(Exception):
    """Bad input or configuration, reported to the user as one line (CLI exit code 2)."""


class ModelError(LandcoverError):
    """An ONNX model that cannot be read, or whose metadata does not follow the schema."""


class Cancelled(LandcoverError):
    """The user cancelled the run; no output was written."""
