"""`ingest_doc(doc_id)`: read a document from the store, normalize it, write overlapping chunks.

The document store is a folder (`DOCUMENTS_DIR`); `doc_id` is a file's name without its
extension. The chunks go to `INGESTED_DIR/<doc_id>.jsonl`, written atomically (temp file +
rename), so a reader never sees half a file and a re-run gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

from app.worker.runtime import PermanentError, report_progress, settings

CHUNK_WORDS = 120
OVERLAP_WORDS = 20
_DOC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def ingest_doc(doc_id: str) -> dict[str, Any]:
    """Ingest one document; returns {doc_id, chunks, words, sha256, output}.

    Raises:
        PermanentError: the id is malformed, or no such document exists (retrying cannot help).
    """
    config = settings()
    source = find_document(Path(config.documents_dir), doc_id)
    text = normalize(source.read_text(encoding="utf-8"))
    words = text.split()
    chunks = list(split_words(words, CHUNK_WORDS, OVERLAP_WORDS))
    lines = []
    for index, (start, end) in enumerate(chunks):
        chunk = " ".join(words[start:end])
        lines.append(
            json.dumps(
                {"doc_id": doc_id, "chunk": index, "start_word": start, "end_word": end, "text": chunk},
                ensure_ascii=False,
                sort_keys=True,
            )
        )
        report_progress(index + 1, len(chunks), f"chunk {index + 1} of {len(chunks)}")
    output = Path(config.ingested_dir) / f"{doc_id}.jsonl"
    write_atomically(output, "".join(line + "\n" for line in lines))
    return {
        "doc_id": doc_id,
        "chunks": len(chunks),
        "words": len(words),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "output": str(output),
    }


def find_document(folder: Path, doc_id: str) -> Path:
    """The one file in `folder` named `doc_id` plus an extension."""
    if not isinstance(doc_id, str) or not _DOC_ID.fullmatch(doc_id) or ".." in doc_id:
        raise PermanentError(f"doc_id {doc_id!r} is not a document name (letters, digits, '.', '_', '-')")
    matches = sorted(p for p in folder.glob(f"{glob_escape(doc_id)}.*") if p.is_file() and p.stem == doc_id)
    if not matches:
        raise PermanentError(f"document {doc_id!r} not found in {folder}")
    return matches[0]


def normalize(text: str) -> str:
    """Unicode NFKC, one kind of line break, single spaces, paragraphs kept apart by one blank line."""
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = re.split(r"\n\s*\n", text)
    cleaned = (" ".join(p.split()) for p in paragraphs)
    return "\n\n".join(p for p in cleaned if p)


def split_words(words: list[str], size: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) word ranges of `size` words, each sharing `overlap` words with the previous one."""
    if not words:
        return []
    step = size - overlap
    spans = []
    for start in range(0, len(words), step):
        spans.append((start, min(start + size, len(words))))
        if start + size >= len(words):
            break
    return spans


def write_atomically(path: Path, content: str) -> None:
    """Write `content` to `path` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)
