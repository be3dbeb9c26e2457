"""The file format of the package's generated tables (data/*.jsonl), read by data/indexed-lines.js.

JSON Lines: the first line is a header whose "index" lists `[key, offset, length]` for each entry: the
byte offset of its line (counted from the first byte after the header line) and its length in bytes
(without the newline); then one entry per line, `{"key": <key>, ...}`. A reader parses the header and
then only the entries it looks up, so a cold start pays for the few services a function uses, not for
all of them. (A list of lists, not an object keyed by entry: JSON.parse reads it several times faster,
and the header is read at every cold start.)
"""

import json


def dumps(value):
    return json.dumps(value, separators=(",", ":"))


def write_indexed_lines(path, header, entries):
    """Writes `header` (a dict, without "index") and `entries` ({key: dict}, in the order given)."""
    lines = [dumps({"key": key, **entry}).encode("utf-8") for key, entry in entries.items()]
    index = []
    offset = 0
    for key, line in zip(entries, lines):
        index.append([key, offset, len(line)])
        offset += len(line) + 1
    with open(path, "wb") as f:
        f.write(dumps({**header, "index": index}).encode("utf-8") + b"\n")
        for line in lines:
            f.write(line + b"\n")
