"""Progress where there is no terminal: a plain line every few seconds, never silence for hours."""

from __future__ import annotations

import re

import corpus.cli
from corpus.cliutils import PlainProgress, progress, progress_interval, run_app
from corpus.store import ProgramStore, mark_exact_duplicates
from tests.conftest import GRADIENT, make_record
from tests.corpus.helpers import db_path


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_plain_line_at_most_every_interval_with_rate_elapsed_and_eta(capsys):
    clock = Clock()
    plain = PlainProgress("hashing programs", 1000, interval=5.0, clock=clock)
    clock.now += 1
    plain.advance(10)  # 1 s in: too early for a line
    clock.now += 4
    plain.advance(90)  # 5 s in: 100 of 1000 at 20/s, 45 s to go
    clock.now += 2
    plain.advance(100)  # 2 s after the last line: none
    clock.now += 3725
    plain.advance(700)
    plain.finish()
    assert capsys.readouterr().err.splitlines() == [
        "hashing programs: 100/1,000 (10%), 20.0/s, elapsed 0:05, ETA 0:45",
        "hashing programs: 900/1,000 (90%), 0.2/s, elapsed 1:02:12, ETA 6:54",
        "hashing programs: 900/1,000 (90%), 0.2/s, elapsed 1:02:12, done",
    ]


def test_a_short_job_prints_nothing_and_an_unknown_total_has_no_eta(capsys):
    clock = Clock()
    quick = PlainProgress("indexing code", None, interval=5.0, clock=clock)
    quick.advance(3)
    quick.finish()
    assert capsys.readouterr().err == ""
    endless = PlainProgress("indexing code", None, interval=5.0, clock=clock)
    clock.now += 10
    endless.advance(50)
    assert capsys.readouterr().err == "indexing code: 50, 5.0/s, elapsed 0:10\n"


def test_the_interval_comes_from_the_environment(monkeypatch, capsys):
    assert progress_interval() == 5.0
    monkeypatch.setenv("IMAGEPROGRAMS_PROGRESS_SECONDS", "0.5")
    assert progress_interval() == 0.5
    monkeypatch.setenv("IMAGEPROGRAMS_PROGRESS_SECONDS", "soon")
    assert progress_interval() == 5.0
    with progress("copying", total=2, interval=0) as advance:  # stderr is not a terminal here
        advance(1)
        advance(1)
    lines = capsys.readouterr().err.splitlines()
    counts = [line.split(",")[0] for line in lines]
    assert counts == ["copying: 1/2 (50%)", "copying: 2/2 (100%)", "copying: 2/2 (100%)"]
    assert lines[-1].endswith(", done")


def test_corpus_dedup_reports_progress_when_piped(catalogue, monkeypatch, capsys):
    records = [make_record(f"p{i}", GRADIENT.replace("0.5", f"0.{i}") + "//" + "x" * i) for i in range(5)]
    with catalogue.session() as s:
        ProgramStore(catalogue).store(records, s.connection())
        mark_exact_duplicates(s.connection())
    monkeypatch.setenv("IMAGEPROGRAMS_PROGRESS_SECONDS", "0")
    db = db_path(catalogue)
    assert run_app(corpus.cli.app, "corpus", ["dedup", "--db", db, "--workers", "0", "--json"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"hashing programs: 5/5 \(100%\), [\d.,]+/s, elapsed 0:00", err[0])
    assert err[-1].endswith(", done")


def test_dedup_progress_advances_by_each_chunk_not_by_the_running_count(catalogue, monkeypatch):
    import corpus.near_duplicates as near

    def signing_in_two_chunks(items, *, threshold, progress, workers):
        progress(2)  # find_near_duplicates reports how many are signed so far
        progress(5)
        return []

    monkeypatch.setattr(near, "find_near_duplicates", signing_in_two_chunks)
    advances: list[int] = []
    near.mark_near_duplicates(catalogue, progress=advances.append)
    assert advances == [2, 3]
