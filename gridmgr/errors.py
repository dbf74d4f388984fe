"""The exception hierarchy: each error carries an HTTP status and a message safe to show a user."""

from __future__ import annotations


class GridmgrError(Exception):
    """Base of every error gridmgr raises on purpose; its message is safe for users."""

    status = 400

    def __init__(self, message: str, *, record: str | None = None, field: str | None = None):
        self.record = record
        self.field = field
        prefix = ""
        if record is not None:
            prefix += f"{record}: "
        if field is not None:
            prefix += f"field '{field}': "
        super().__init__(prefix + message)
        self.message = prefix + message


class ConfigError(GridmgrError):
    """The configuration or the environment is not usable."""

    status = 500


class DatabaseUnavailable(GridmgrError):
    """The database cannot be reached or is not set up."""

    status = 503


class NotMigrated(DatabaseUnavailable):
    """An external database is behind the code's migrations."""


class InputError(GridmgrError):
    """Bad input: a file, a row, a field or a coordinate."""


class CoordinateError(InputError):
    """A coordinate is out of the extent, swapped, or in an unknown CRS."""


class TopologyError(InputError):
    """Cells overlap, leave gaps, cross communities or are invalid; `problems` lists each one."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []

    def __str__(self) -> str:
        return "\n".join([self.message, *("  - " + p for p in self.problems)])


class NotFound(GridmgrError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    status = 404


class Forbidden(GridmgrError):
    """The caller may not do this."""

    status = 403
