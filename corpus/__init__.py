"""corpus: the catalogue of image programs.

Other packages use these names (and the modules named below), nothing private:

- records: :class:`ProgramRecord`, :class:`PassRecord`, :class:`InputRecord`, :func:`normalise_input`,
  :func:`author_key` (how authors are compared)
- errors: :class:`ImageProgramsError` and its subclasses
- ``corpus.db.open_catalogue``, ``corpus.store.ProgramStore``, ``corpus.queries``,
  ``corpus.programs`` (``find_program``), ``corpus.filter_sql`` (``apply_filter``),
  ``corpus.validations``, ``corpus.snapshots``, ``corpus.transfer`` (``copy_catalogue``)
  (imported on use: they pull in SQLAlchemy)
- ``corpus.attribution`` (the credits of a snapshot or a picture), ``corpus.filters``
  (``ProgramFilter``, ``LICENCE_CLASSES``, ``LIMITED_USE_CLASSES``): no database library
"""

from corpus.errors import (
    CatalogueError,
    ImageProgramsError,
    InputFormatError,
    NotFoundError,
    SnapshotError,
)
from corpus.records import (
    DIALECTS,
    INPUT_KINDS,
    InputRecord,
    PassRecord,
    ProgramRecord,
    author_key,
    normalise_input,
    parse_program_key,
)

__all__ = [
    "DIALECTS",
    "INPUT_KINDS",
    "CatalogueError",
    "ImageProgramsError",
    "InputFormatError",
    "InputRecord",
    "NotFoundError",
    "PassRecord",
    "ProgramRecord",
    "SnapshotError",
    "author_key",
    "normalise_input",
    "parse_program_key",
]
