"""Compressed dumps (.gz, .bz2, .xz, .zst) read streaming with their format detected through the
compression, folders of dumps read down their subfolders, damaged data reported in one line, and
imports of compressed files resumed where they stopped. Then slices of the real public corpus
(skipped where ../shared/corpus is absent)."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from pathlib import Path

import pytest
import zstandard

from corpus.records import ProgramRecord
from harvest.importers import BadRecord, detect_format, read_records
from harvest.importing import import_path
from tests.conftest import ROOT
from tests.harvest.helpers import dies_after

IMAGE = "void mainImage(out vec4 c, in vec2 p) {{ c = vec4(p / iResolution.xy, 0.{n}, 1.0); }}\n"
COMPRESS = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
    ".zst": lambda data: zstandard.ZstdCompressor().compress(data),
}


def flat(n: int) -> dict:
    return {
        "id": f"cmp{n:03d}",
        "name": f"c{n}",
        "author": "me",
        "image_code": IMAGE.format(n=n),
        "license": "MIT",
    }


def api(n: int) -> dict:
    code = IMAGE.format(n=n)
    return {
        "Shader": {
            "info": {"id": f"api{n:03d}", "name": f"a{n}", "username": "me"},
            "renderpass": [{"name": "Image", "type": "image", "code": code, "inputs": [], "outputs": []}],
        }
    }


def jsonl(records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(COMPRESS[path.suffix](data) if path.suffix in COMPRESS else data)
    return path


def ids(items) -> list[str]:
    return [i.external_id for i in items if isinstance(i, ProgramRecord)]


@pytest.mark.parametrize("suffix", list(COMPRESS))
def test_each_compression_is_read_with_its_format_detected_through_it(tmp_path, suffix):
    lines = write(tmp_path / f"flat.jsonl{suffix}", jsonl(flat(n) for n in range(5)))
    array = write(tmp_path / f"api.json{suffix}", json.dumps([api(n) for n in range(3)]).encode())
    assert (detect_format(lines), detect_format(array)) == ("shadertoys-jsonl", "shadertoy-json")
    assert ids(read_records(lines)) == [f"cmp{n:03d}" for n in range(5)]
    assert ids(read_records(array)) == [f"api{n:03d}" for n in range(3)]
    items = list(read_records(lines, "shadertoys-jsonl"))  # the format given: still decompressed
    assert all(isinstance(i, ProgramRecord) for i in items)
    assert items[2].origin == f"{lines}:3"  # lines of the decompressed text


def test_a_compressed_dump_without_its_suffix_is_known_by_its_first_bytes(tmp_path):
    dump = write(tmp_path / "export.jsonl.gz", jsonl(flat(n) for n in range(2)))
    renamed = dump.rename(tmp_path / "export.jsonl")
    assert ids(read_records(renamed)) == ["cmp000", "cmp001"]


def test_a_compressed_dump_cut_short_keeps_what_came_before_and_says_so_in_one_line(tmp_path):
    whole = gzip.compress(jsonl(flat(n) for n in range(400)))
    dump = tmp_path / "cut.jsonl.gz"
    dump.write_bytes(whole[: len(whole) * 2 // 3])
    items = list(read_records(dump))
    records = [i for i in items if isinstance(i, ProgramRecord)]
    (bad,) = [i for i in items if isinstance(i, BadRecord)]
    assert 0 < len(records) < 400 and bad is items[-1]
    assert bad.location == f"{dump}:{len(records) + 1}"
    assert "the gzip data is damaged or cut short" in bad.reason and "nothing after it" in bad.reason


def test_a_file_named_gz_that_is_not_gzip_is_a_clear_error(tmp_path, catalogue):
    from corpus.errors import InputFormatError

    fake = tmp_path / "dump.jsonl.gz"
    fake.write_bytes(jsonl([flat(1)]))  # not compressed at all
    with pytest.raises(InputFormatError, match="cannot tell the format of gzip-compressed"):
        import_path(catalogue, fake)
    report = import_path(catalogue, fake, "shadertoys-jsonl")
    assert report.added == 0 and "gzip data is damaged" in report.bad[0].reason


def test_a_folder_of_dumps_is_read_down_its_subfolders(tmp_path, catalogue):
    root = tmp_path / "dataset"
    write(root / "data" / "annotated" / "20k_2014-03.jsonl", jsonl(flat(n) for n in range(3)))
    write(root / "data" / "annotated" / "api" / "api_2020-01.jsonl.gz", jsonl(flat(n) for n in range(3, 5)))
    write(root / "data" / "annotated" / "api" / "overlap" / "api_2020-01.jsonl.xz", jsonl([flat(5)]))
    write(root / ".cache" / "hidden.jsonl", jsonl([flat(9)]))  # hidden folders are not read
    (root / "README.md").write_text("a dataset")
    report = import_path(catalogue, root)
    assert (report.format, report.added, report.bad_count) == ("shadertoys-jsonl", 6, 0)


def test_an_interrupted_import_of_a_compressed_dump_resumes_where_it_stopped(
    tmp_path, catalogue, monkeypatch
):
    import harvest.importing as importing

    dump = write(tmp_path / "d.jsonl.zst", jsonl(flat(n) for n in range(50)))
    real = importing.read_records
    monkeypatch.setattr(importing, "read_records", dies_after(23, real))
    with pytest.raises(KeyboardInterrupt):
        import_path(catalogue, dump, batch_size=10)
    monkeypatch.setattr(importing, "read_records", real)
    report = import_path(catalogue, dump, batch_size=10)
    assert (report.resumed_from, report.added) == (20, 30)  # a count of records, not a byte offset
    assert import_path(catalogue, dump).already_imported


# the real public corpus ---------------------------------------------------------------------------

REAL = ROOT.parent / "shared" / "corpus" / "shadertoys-public.jsonl.gz"
needs_corpus = pytest.mark.skipif(not REAL.is_file(), reason="../shared/corpus is absent")


def real_slice(single: int, multipass: int) -> list[bytes]:
    """The first ``single`` lines of the real dump and its first ``multipass`` records with buffers
    (they come from the API, after the Shaders21k ones), as the raw lines."""
    lines, passes = [], 0
    with gzip.open(REAL, "rb") as f:
        for line in f:
            if len(lines) < single:
                lines.append(line)
            elif b'"buffer_a_code": ""' not in line:
                lines.append(line)
                passes += 1
            if len(lines) >= single and passes >= multipass:
                break
    return lines


@needs_corpus
def test_a_slice_of_the_real_corpus_imports_as_it_is_compressed(tmp_path, catalogue):
    from corpus.queries import show_program

    lines = real_slice(120, 20)
    dump = tmp_path / "shadertoys-public-slice.jsonl.gz"
    dump.write_bytes(gzip.compress(b"".join(lines)))
    records = [json.loads(line) for line in lines]

    report = import_path(catalogue, dump)

    assert (report.format, report.bad_count) == ("shadertoys-jsonl", 0)
    assert report.added == len({r["id"] for r in records})
    multipass = records[-1]
    program = show_program(catalogue, f"shadertoy:{multipass['id']}")
    assert [p["name"] for p in program["passes"]][-1] == "Image" and len(program["passes"]) > 1
    assert {p["name"]: p["code"] for p in program["passes"]}["Buffer A"] == multipass["buffer_a_code"]
    assert import_path(catalogue, dump).already_imported
    assert import_path(catalogue, dump, "shadertoys-jsonl", again=True).unchanged == report.added
