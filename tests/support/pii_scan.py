"""Scans every table of a database (or the embedded bus file) for given strings: the proof that
an erasure left nothing behind."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from sqlalchemy import MetaData, select

from shared.db import create_engine


async def database_hits(url: str, needles: list[str]) -> dict[str, int]:
    """Table name → number of rows whose text contains one of ``needles`` (case-insensitive)."""
    engine = create_engine(url)
    hits: dict[str, int] = {}
    try:
        async with engine.connect() as connection:
            metadata = MetaData()
            await connection.run_sync(metadata.reflect)
            for table in metadata.sorted_tables:
                rows = (await connection.execute(select(table))).all()
                count = sum(1 for row in rows if _contains(repr(tuple(row)), needles))
                if count:
                    hits[table.name] = count
    finally:
        await engine.dispose()
    return hits


def bus_hits(path: Path, needles: list[str]) -> int:
    """Records of the embedded bus whose key, value or headers contain one of ``needles``."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT key, value, headers FROM bus_message").fetchall()
    return sum(1 for row in rows if _contains(_text(row), needles))


def file_hits(folder: Path, needles: list[str]) -> dict[str, int]:
    """SQLite files (databases and their ``-wal`` logs) under ``folder`` whose raw bytes hold
    one of ``needles`` (ASCII case-insensitive): file name -> occurrences. What an erasure must
    leave on disk, whatever the tables say."""
    hits: dict[str, int] = {}
    for path in sorted(folder.iterdir()):
        if not (path.name.endswith(".db") or path.name.endswith(".db-wal")):
            continue
        raw = path.read_bytes().lower()
        count = sum(raw.count(needle.lower().encode()) for needle in needles)
        if count:
            hits[path.name] = count
    return hits


def _text(row: tuple[object, ...]) -> str:
    parts = []
    for value in row:
        parts.append(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
    return " ".join(parts)


def _contains(text: str, needles: list[str]) -> bool:
    # JSON escapes non-ASCII characters (é → \\u00e9): look for both spellings.
    folded = text.casefold()
    spellings = {spelling.casefold() for n in needles for spelling in (n, json.dumps(n)[1:-1])}
    return any(spelling in folded for spelling in spellings)
