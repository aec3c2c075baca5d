"""What the four command lines share: the ``--db`` option, error reporting, output and progress.

Every console script runs through :func:`run_app`, which turns expected failures
(:class:`~corpus.errors.ImageProgramsError`, a wrong option) into one clear line on stderr and
an exit code, never a traceback. Progress is a bar on a terminal and a plain line every few
seconds on stderr elsewhere; stdout stays parseable.
"""

import contextlib
import csv
import inspect
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from corpus.errors import ExitCode, ImageProgramsError
from corpus.times import iso_utc

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="IMAGEPROGRAMS_DB",
        help="Catalogue: a SQLite path or a SQLAlchemy URL. Default: catalogue.db in this folder.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (one object, or one per line) for scripts.")
]

stderr = Console(stderr=True, highlight=False)


def warn(message: str) -> None:
    """One plain line on stderr: never wrapped, never styled, so scripts and tests can read it."""
    print(message, file=sys.stderr, flush=True)


def db_module():
    """corpus.db, imported on use: SQLAlchemy would otherwise slow every --help by 0.3 s."""
    from corpus import db

    return db


def package_version() -> str:
    try:
        return version("imageprograms")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0+unknown"


def new_app(name: str, help_text: str) -> typer.Typer:
    """A Typer app with ``--version`` and plain (un-boxed) error output."""
    app = typer.Typer(
        name=name,
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    def _version(value: bool) -> None:
        if value:
            typer.echo(f"{name} (imageprograms) {package_version()}")
            raise typer.Exit()

    @app.callback()
    def _main(
        _version_flag: Annotated[
            bool,
            typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
        ] = False,
    ) -> None:
        pass

    _main.__doc__ = help_text
    return app


def run_app(app: typer.Typer, prog_name: str, args: Sequence[str] | None = None) -> int:
    """Run ``app`` like a console script: an expected failure is an ``error:`` line, a ``hint:``
    line (the failure's own, or its exit code's) and an :class:`~corpus.errors.ExitCode`."""
    command = typer.main.get_command(app)
    tidy_help(command)
    try:
        rv = command.main(
            args=list(args) if args is not None else None, prog_name=prog_name, standalone_mode=False
        )
    except click.exceptions.UsageError as exc:
        message = exc.format_message().strip()
        if not message:  # a bare group name: click has printed the help already
            return ExitCode.OK
        # Typer and click may both append the same "Did you mean …?" suggestion.
        message = " ".join(dict.fromkeys(re.split(r"(?<=[.?!])\s+", message)))
        where = exc.ctx.command_path if exc.ctx is not None else prog_name
        warn(f"error: {message}")
        warn(f"hint: see: {where} --help")
        return ExitCode.USAGE
    except click.exceptions.Abort:
        return _interrupted()
    except ImageProgramsError as exc:
        code = ExitCode(exc.exit_code)
        warn(f"error: {exc.message}")
        warn(f"hint: {exc.hint or code.hint}")
        return code
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:
        return ExitCode.OK
    if rv == ExitCode.INTERRUPTED:
        # Typer turns a KeyboardInterrupt in a command into a bare exit 130, with no word; the
        # commands that stop on purpose raise an ImageProgramsError (above) instead.
        return _interrupted()
    return rv if isinstance(rv, int) else ExitCode.OK


def _interrupted() -> int:
    warn("error: interrupted (Ctrl-C); what was committed so far is kept")
    warn(f"hint: {ExitCode.INTERRUPTED.hint}")
    return ExitCode.INTERRUPTED


_RICH_TAG = re.compile(r"(?<!\\)\[")


def tidy_help(command: click.Command) -> None:
    """Make the docstrings of ``command`` and its subcommands read well in Typer's rich help.

    Typer keeps the line breaks of a docstring's later paragraphs, so text wrapped at the
    source's width comes out ragged at any other; and rich reads ``[...]`` as markup and drops
    it (``imageprograms[scancode]``). Paragraphs are joined into one line each (rich wraps them
    to the terminal) and brackets are escaped.
    """
    if command.help:
        paragraphs = inspect.cleandoc(command.help).split("\n\n")
        command.help = "\n\n".join(_RICH_TAG.sub(r"\\[", " ".join(p.split("\n"))) for p in paragraphs)
    for param in command.params:
        text = getattr(param, "help", None)
        if text:
            param.help = _RICH_TAG.sub(r"\\[", text)  # type: ignore[attr-defined]
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)


def entry_point(app: typer.Typer, prog_name: str) -> Callable[[], None]:
    def main() -> None:
        sys.exit(run_app(app, prog_name))

    return main


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=_json_value) + "\n")


def _json_value(value: Any) -> str:
    """What JSON cannot hold, as text: a time in ISO 8601 UTC with ``Z``, anything else by str."""
    return iso_utc(value) if isinstance(value, datetime) else str(value)


def emit_rows(rows: Iterable[dict[str, Any]], columns: Sequence[str], fmt: str) -> int:
    """Print rows as a table (terminal), JSON lines or CSV; returns how many were printed."""
    n = 0
    if fmt == "json":
        for row in rows:
            emit_json(row)
            n += 1
        return n
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})
            n += 1
        return n
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    for i, c in enumerate(columns):
        if i == 0:  # the first column names the thing (SOURCE:ID): never cut it, it gets pasted
            width = max([len(c), *(len(r[0]) for r in cells)])
            table.add_column(c, no_wrap=True, min_width=width)
        else:
            table.add_column(c, overflow="ellipsis", no_wrap=True, max_width=64)
    for r in cells:
        # Text, not str: a title like "[bold]x[/bold]" is data, never rich markup
        table.add_row(*(Text(cell) for cell in r))
        n += 1
    Console(highlight=False, width=None if sys.stdout.isatty() else 200).print(table)
    return n


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, datetime):
        return iso_utc(value) or ""
    return str(value)


#: Seconds between plain progress lines when stderr is not a terminal (a float; tests set 0).
PROGRESS_SECONDS_ENV = "IMAGEPROGRAMS_PROGRESS_SECONDS"
DEFAULT_PROGRESS_SECONDS = 5.0


def _clock_time(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class PlainProgress:
    """Progress for a log or a pipe: one plain line on stderr at most every ``interval`` seconds
    (description, done/total, rate, elapsed, ETA), and a last line if any was printed, so an
    hours-long piped job is never silent and a short one stays quiet."""

    def __init__(
        self,
        description: str,
        total: int | None,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.description, self.total, self.interval, self.clock = description, total, interval, clock
        self.done = 0
        self.started = self.last = clock()
        self.printed = False
        self._lock = threading.Lock()  # workers' callbacks may advance from threads

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            now = self.clock()
            if now - self.last >= self.interval:
                self.last, self.printed = now, True
                warn(self.line(now))

    def finish(self) -> None:
        if self.printed:
            warn(self.line(self.clock(), final=True))

    def line(self, now: float, *, final: bool = False) -> str:
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            parts = [f"{self.done:,}/{self.total:,} ({100 * self.done / self.total:.0f}%)"]
        else:
            parts = [f"{self.done:,}"]
        parts += [f"{rate:,.1f}/s", f"elapsed {_clock_time(elapsed)}"]
        if final:
            parts.append("done")
        elif self.total and rate > 0 and self.done < self.total:
            parts.append(f"ETA {_clock_time((self.total - self.done) / rate)}")
        return f"{self.description}: {', '.join(parts)}"


def progress_interval() -> float:
    """Seconds between plain progress lines: ``IMAGEPROGRAMS_PROGRESS_SECONDS``, else 5."""
    try:
        return max(0.0, float(os.environ.get(PROGRESS_SECONDS_ENV, DEFAULT_PROGRESS_SECONDS)))
    except ValueError:
        return DEFAULT_PROGRESS_SECONDS


@contextlib.contextmanager
def progress(
    description: str, total: int | None = None, *, interval: float | None = None
) -> Iterator[Callable[[int], None]]:
    """Progress of long work on stderr; yields ``advance(n)``.

    A rich bar on a terminal; elsewhere (a pipe, a log file) a plain line every ``interval``
    seconds (default :func:`progress_interval`), see :class:`PlainProgress`.
    """
    if not sys.stderr.isatty():
        plain = PlainProgress(description, total, progress_interval() if interval is None else interval)
        yield plain.advance
        plain.finish()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed:,.0f}/s" if task.speed else "")

    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
    ]
    with Progress(*columns, TimeElapsedColumn(), console=stderr, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
