"""Read the records of an offline W&B run file (``run-*.wandb``): a LevelDB-style log of protobuf records.

wandb ships no reader for its offline files, so tests that check what was
logged decode the format here: a 7-byte file header, then 32 KiB blocks of
chunks (crc32 4 bytes, length 2 bytes little-endian, type 1 byte: full, first,
middle, last).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: str | Path) -> list:
    """Every `wandb_internal_pb2.Record` in the file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file")
    out, pos, parts = [], HEADER, []
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # block trailer padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind in (FULL, FIRST):
            parts = [chunk]
        elif kind in (MIDDLE, LAST):
            parts.append(chunk)
        if kind in (FULL, LAST):
            rec = wandb_internal_pb2.Record()
            rec.ParseFromString(b"".join(parts))
            out.append(rec)
        if kind == 0 and length == 0:
            break
    return out


def history(path: str | Path) -> list[dict]:
    """The logged history rows ({key: value}) of an offline run file."""
    rows = []
    for rec in records(path):
        if rec.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in rec.history.item})
    return rows
