import json
from dataclasses import replace
from pathlib import Path

import pytest

from app.config import Settings
from app.worker import runtime
from app.worker.jobs import ingest_doc as module
from app.worker.runtime import JobContext, PermanentError

DOCS = Path(__file__).resolve().parents[2] / "data" / "documents"


def run_in_context(tmp_path, doc_id, progress):
    settings = replace(Settings(), documents_dir=DOCS, ingested_dir=tmp_path)
    context = JobContext(
        "job1", "ingest_doc", "default", 1, settings, lambda d, t, m: progress.append((d, t, m))
    )
    with runtime.running(context):
        return module.ingest_doc(doc_id)


def test_ingests_a_document_into_overlapping_chunks(tmp_path):
    progress = []
    summary = run_in_context(tmp_path, "123", progress)
    lines = [json.loads(line) for line in (tmp_path / "123.jsonl").read_text().splitlines()]
    assert summary["chunks"] == len(lines) == 3
    assert summary["words"] == 293
    assert lines[0]["start_word"] == 0 and lines[1]["start_word"] == module.CHUNK_WORDS - module.OVERLAP_WORDS
    assert (
        lines[0]["text"].split()[-module.OVERLAP_WORDS :] == lines[1]["text"].split()[: module.OVERLAP_WORDS]
    )
    assert lines[-1]["end_word"] == summary["words"]
    assert progress[-1][:2] == (3, 3)


def test_running_twice_gives_the_same_bytes(tmp_path):
    first = run_in_context(tmp_path, "declaration", [])
    content = (tmp_path / "declaration.jsonl").read_bytes()
    second = run_in_context(tmp_path, "declaration", [])
    assert first == second
    assert (tmp_path / "declaration.jsonl").read_bytes() == content
    assert [p.name for p in tmp_path.iterdir()] == ["declaration.jsonl"]  # no temp files left


@pytest.mark.parametrize("doc_id", ["missing", "../etc/passwd", "a/b", "", "*", ".hidden"])
def test_unknown_or_malformed_ids_fail_permanently_naming_the_id(tmp_path, doc_id):
    with pytest.raises(PermanentError) as caught:
        run_in_context(tmp_path, doc_id, [])
    assert repr(doc_id) in str(caught.value)


def test_normalize():
    text = "  Cafe\u0301\r\n\r\n\r\nline   one\nline\ttwo  \n"
    assert module.normalize(text) == "Café\n\nline one line two"


@pytest.mark.parametrize(
    ("count", "expected"), [(0, []), (5, [(0, 5)]), (10, [(0, 6), (4, 10)]), (11, [(0, 6), (4, 10), (8, 11)])]
)
def test_split_words(count, expected):
    assert module.split_words(["w"] * count, 6, 2) == expected


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.jsonl"
    target.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(module.os, "replace", broken_replace)
    with pytest.raises(OSError):
        module.write_atomically(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
