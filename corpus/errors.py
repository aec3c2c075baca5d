"""The project's exception tree, in one place.

Every expected failure is an :class:`ImageProgramsError` whose message says what happened and
whose ``hint`` says what the user can do next. The command lines print ``message`` and ``hint``
on one or two lines and exit with ``exit_code``; they never show a traceback for these.

- :class:`UsageProblem`: an option value that cannot work (exit 2, like a wrong option).
- :class:`CatalogueError`: the catalogue cannot be opened or written (missing, read-only,
  locked, full disk, schema too new or too old).
- :class:`InputFormatError`: a file or record is not in the format we expected.
- :class:`NotFoundError`: a named program, snapshot or source does not exist.
- :class:`SnapshotError`: a snapshot cannot be created, exported or verified.
"""

from __future__ import annotations


class ImageProgramsError(Exception):
    """Base for expected failures: a message for the user and a hint for what to do next."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageProblem(ImageProgramsError):
    exit_code = 2


class CatalogueError(ImageProgramsError):
    exit_code = 3


class InputFormatError(ImageProgramsError):
    exit_code = 4


class NotFoundError(ImageProgramsError):
    exit_code = 5


class SnapshotError(ImageProgramsError):
    exit_code = 6
