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

The other packages add the failures only they meet (``harvest.fetcher.FetchFailed``,
``render.context.NoContextError`` …), but every exit code any command uses is a member of
:class:`ExitCode`, here, and the README's table lists them all (a test holds the two together).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit code the four command lines use, with what it means and what to try next."""

    OK = 0
    #: an unexpected failure: a bug (the traceback is printed; please report it)
    BUG = 1
    #: a wrong option or value
    USAGE = 2
    #: the catalogue: missing, read-only, locked, disk full, schema newer or older, server unreachable
    CATALOGUE = 3
    #: an input that could not be read (or an import that found nothing)
    INPUT = 4
    #: a program, snapshot, run or source that does not exist
    NOT_FOUND = 5
    #: a snapshot that cannot be made, exported or verified
    SNAPSHOT = 6
    #: a crawl whose requests failed for good (retries spent, disallowed, too large)
    FETCH_FAILED = 7
    #: a site that answered with a bot challenge, a block page or a login wall
    SOURCE_BLOCKED = 8
    #: no OpenGL context (no EGL, no driver, no GPU where one was asked for)
    NO_CONTEXT = 9
    #: the driver refused a shader (compile or link error), rendering one program
    SHADER_ERROR = 10
    #: a program this renderer cannot draw (inputs or a dialect it does not support)
    UNSUPPORTED = 11
    #: interrupted (Ctrl-C): what was committed or checkpointed is kept
    INTERRUPTED = 130
    #: stopped by the watchdog (128 + SIGKILL): a shader that drew nothing within --deadline while
    #: rendering in the command's own process (render frames, video, bench); only a kill stops a
    #: process stuck in the GL driver, so the shell reports the kill's status
    HUNG = 137

    @property
    def hint(self) -> str:
        """What to try next when the failure itself gave no more specific hint."""
        return _DEFAULT_HINTS[self]


_DEFAULT_HINTS = {
    ExitCode.OK: "",
    ExitCode.BUG: "this is a bug: please report it with the command and its output",
    ExitCode.USAGE: "see the command's --help for the options and their values",
    ExitCode.CATALOGUE: "check --db (or IMAGEPROGRAMS_DB); corpus db info says what the catalogue is",
    ExitCode.INPUT: "check the file or folder named above; --format says what it holds",
    ExitCode.NOT_FOUND: "corpus ls (programs) or corpus snapshot ls (snapshots) shows what exists",
    ExitCode.SNAPSHOT: "corpus snapshot show NAME says what the snapshot holds",
    ExitCode.FETCH_FAILED: "harvest status --failed lists them; harvest retry-failed SOURCE retries them",
    ExitCode.SOURCE_BLOCKED: "the site refuses scripted clients: use a dump (harvest import) instead",
    ExitCode.NO_CONTEXT: "render info says which OpenGL devices this machine has",
    ExitCode.SHADER_ERROR: "the driver's log names the line(column) in the program's own code: fix it in"
    " a copy and render that with --code FILE; render validate records such programs, render vet leaves"
    " them out",
    ExitCode.UNSUPPORTED: "render validate records why a program cannot be drawn here",
    ExitCode.INTERRUPTED: "run the same command again: it resumes where it stopped",
    ExitCode.HUNG: "check the program with `render validate` (it runs each in a killable worker), "
    "or raise --deadline",
}


class ImageProgramsError(Exception):
    """Base for expected failures: a message for the user and a hint for what to do next."""

    exit_code: ExitCode = ExitCode.BUG

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageProblem(ImageProgramsError):
    exit_code = ExitCode.USAGE


class CatalogueError(ImageProgramsError):
    exit_code = ExitCode.CATALOGUE


class InputFormatError(ImageProgramsError):
    exit_code = ExitCode.INPUT


class NotFoundError(ImageProgramsError):
    exit_code = ExitCode.NOT_FOUND


class SnapshotError(ImageProgramsError):
    exit_code = ExitCode.SNAPSHOT
