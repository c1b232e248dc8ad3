"""User-facing errors.

Raise :class:`InputError` for anything the user can fix (a bad file, field, value or
missing weights). The CLI prints its message on one line and exits with code 2; every
other exception is a bug and shows a traceback only with ``--debug``.
"""


class InputError(ValueError):
    """Bad user input. The message must name the file and/or field at fault."""


class NotBuiltError(RuntimeError):
    """A feature that is declared but not implemented yet (the CLI exits with code 3)."""


class MissingDependencyError(InputError):
    """An optional dependency or weight file is missing; the message says what to install or where to put it."""
