"""The file format of the package's generated tables (data/*.jsonl), read by data/indexed-lines.js.

Two files per table. `NAME.jsonl`, JSON Lines: a header line, then one entry per line,
`{"key": <key>, ...}`. `NAME.index.js`, a CommonJS module: where each entry's line is (its byte
offset, counted from the first byte after the header line, and its length in bytes without the
newline) and the header's maps that lookups need (`lookup_maps`), so that opening a table reads no
file, and a lookup reads only its entry's line: a cold start pays for the few services a function
uses, not for the header. The index and each map are one string, `|key:offset:length|...` and
`|key:value|...`: a plain string literal costs the module's compile next to nothing, where an object
or array literal of hundreds of members is compiled into code that builds it (up to 0.3 ms a cold
start for the IAM table's).
"""

import json
import os

INDEX_SUFFIX = ".index.js"
ENTRY_SEPARATOR = "|"
FIELD_SEPARATOR = ":"


def dumps(value):
    return json.dumps(value, separators=(",", ":"))


def index_module_path(path):
    """The index module beside a table: `NAME.jsonl` -> `NAME.index.js`."""
    base, extension = os.path.splitext(path)
    if extension != ".jsonl":
        raise ValueError(f"{path}: a table's file name ends in .jsonl")
    return base + INDEX_SUFFIX


def compact(pairs):
    """`|a:b:c|d:e:f|` of a list of tuples of strings; refuses a string holding a separator."""
    for part in (str(part) for pair in pairs for part in pair):
        if ENTRY_SEPARATOR in part or FIELD_SEPARATOR in part:
            raise ValueError(f"{part!r}: a key or value holds no {ENTRY_SEPARATOR!r} or {FIELD_SEPARATOR!r}")
    return "".join(ENTRY_SEPARATOR + FIELD_SEPARATOR.join(map(str, pair)) for pair in pairs) + ENTRY_SEPARATOR


def write_indexed_lines(path, header, entries, lookup_maps=()):
    """Writes `header` (a dict) and `entries` ({key: dict}, in the order given) to `path` and its index
    module; the header's maps named in `lookup_maps` ({str: str}) go into the module instead of the
    header line."""
    lines = [dumps({"key": key, **entry}).encode("utf-8") for key, entry in entries.items()]
    index = []
    offset = 0
    for key, line in zip(entries, lines):
        index.append((key, offset, len(line)))
        offset += len(line) + 1
    header_line = dumps({k: v for k, v in header.items() if k not in lookup_maps}).encode("utf-8")
    lookup = {
        "bodyStart": len(header_line) + 1,
        "index": compact(index),
        "maps": {name: compact(header[name].items()) for name in lookup_maps},
    }
    with open(path, "wb") as f:
        f.write(header_line + b"\n")
        for line in lines:
            f.write(line + b"\n")
    with open(index_module_path(path), "w", encoding="utf-8") as f:
        f.write(f"// Generated with {os.path.basename(path)} by scripts/indexed_lines.py; do not edit.\n")
        f.write(f"module.exports = {dumps(lookup)}\n")
