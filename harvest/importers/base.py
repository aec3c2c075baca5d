"""What every importer shares: the bad-record report, size limits and the parse guard."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from corpus.errors import InputFormatError
from corpus.records import ProgramRecord
from harvest.formats.common import MAX_CODE_BYTES, clean_metadata, record_problem

#: The largest single document (a JSON line, a zip member, a Shaders21k file) read into memory.
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024

__all__ = [
    "MAX_CODE_BYTES",
    "MAX_DOCUMENT_BYTES",
    "BadRecord",
    "checked",
    "unexpected_problem",
    "utf8_problem",
]


@dataclass(frozen=True)
class BadRecord:
    """A record an import could not use, and why; the import goes on with the next one.

    ``location`` is ``path:LINE`` (JSON lines, 1-based), ``path:#INDEX`` (JSON array items and
    concatenated documents, 0-based) or ``path!member`` (zip or folder members).
    """

    location: str
    reason: str


def utf8_problem(exc: UnicodeDecodeError) -> str:
    return f"not valid UTF-8 (byte {exc.start})"


def unexpected_problem(exc: BaseException) -> str:
    """How a bad-record line names an exception nobody expected on this record."""
    return f"unexpected error ({type(exc).__name__}: {exc})"


def checked(
    location: str, parse: Callable[[], ProgramRecord | list[ProgramRecord]]
) -> Iterator[ProgramRecord | BadRecord]:
    """Run one parser call and yield its records, or a :class:`BadRecord` for each problem.

    Unexpected structure inside a document (a number where an object belongs) is reported too,
    and so is any other exception a parser or the record checks raise on one document: one odd
    record must not end an import of a million.
    """
    try:
        result = parse()
    except InputFormatError as exc:
        yield BadRecord(location, exc.message)
        return
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        yield BadRecord(location, f"unexpected structure ({type(exc).__name__}: {exc})")
        return
    except Exception as exc:  # any failure on one document is that document's alone
        yield BadRecord(location, unexpected_problem(exc))
        return
    records = result if isinstance(result, list) else [result]
    for record in records:
        try:
            problem = record_problem(clean_metadata(record))
        except Exception as exc:  # as above, for the checks of one record
            problem = unexpected_problem(exc)
        if problem is None:
            yield record
        elif len(records) == 1:
            yield BadRecord(location, problem)
        else:
            yield BadRecord(location, f"{record.external_id}: {problem}")
