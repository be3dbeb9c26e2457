'use strict'

// Reads the generated tables of this folder, in the format scripts/indexed_lines.py writes: a JSON
// Lines file whose first line is a header, and an index module beside it that gives each entry's byte
// offset (after the header line) and length, and the header's maps lookups need, as compact strings.
// Opening a table reads no file; an entry is read from disk and parsed the first time it is looked
// up, and the header line only when it is asked for, so a process pays for the few services it uses.

const fs = require('node:fs')
const path = require('node:path')
const PACKAGE_ROOT = require('../package-root.js')

/** The header is read in pieces of this size until its newline (the tables' headers fit in one). */
const HEADER_CHUNK_BYTES = 32 * 1024
const NEWLINE = 0x0a
/** The index module's strings: `|key:offset:length|...`, and `|key:value|...` for each map. */
const ENTRY_SEPARATOR = '|'
const FIELD_SEPARATOR = ':'

/** The fields after `key` in a compact string, or undefined. */
function compactLookup(compact, key) {
  if (typeof key !== 'string' || key.includes(ENTRY_SEPARATOR) || key.includes(FIELD_SEPARATOR)) return undefined
  const at = compact.indexOf(`${ENTRY_SEPARATOR}${key}${FIELD_SEPARATOR}`)
  if (at === -1) return undefined
  const start = at + key.length + 2
  return compact.slice(start, compact.indexOf(ENTRY_SEPARATOR, start)).split(FIELD_SEPARATOR)
}

/** Every entry of a compact string, as arrays of its fields. */
function compactEntries(compact) {
  return compact.split(ENTRY_SEPARATOR).filter((entry) => entry !== '').map((entry) => entry.split(FIELD_SEPARATOR))
}

function readHeader(fd) {
  const chunks = []
  let position = 0
  for (;;) {
    const chunk = Buffer.allocUnsafe(HEADER_CHUNK_BYTES)
    const read = fs.readSync(fd, chunk, 0, chunk.length, position)
    const end = chunk.indexOf(NEWLINE)
    // Bytes past `read` are not the file's: a newline found there does not count.
    if (end !== -1 && end < read) {
      chunks.push(chunk.subarray(0, end))
      const bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
      return { header: JSON.parse(bytes.toString('utf8')), bodyStart: position + end + 1 }
    }
    if (read === 0) throw new Error('the header line has no end')
    chunks.push(chunk.subarray(0, read))
    position += read
  }
}

function readAt(file, position, length) {
  const fd = fs.openSync(file, 'r')
  try {
    const bytes = Buffer.allocUnsafe(length)
    if (fs.readSync(fd, bytes, 0, length, position) !== length) throw new Error(`${file} is shorter than its index says`)
    return bytes.toString('utf8')
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Opens a table (`name` in this folder, or a path) with its index module's exports (`bodyStart`,
 * `index`, `maps`): `header` (the whole header, its line read on first use), `has(key)`, `keys()`,
 * `entry(key)`, the parsed line of that key (undefined for a key the table does not hold), and
 * `lookup(map, key)`, a value of one of the header's maps that came with the index. Throws when the
 * file cannot be read.
 */
function openIndexedLines(name, { bodyStart, index, maps = {} }) {
  const file = path.resolve(PACKAGE_ROOT, 'data', name)
  if (!Number.isInteger(bodyStart) || typeof index !== 'string') throw new Error(`${file} has no index`)
  fs.accessSync(file, fs.constants.R_OK)
  let header
  const parsed = new Map()
  return {
    get header() {
      if (header === undefined) {
        const fd = fs.openSync(file, 'r')
        try {
          const line = readHeader(fd)
          if (line.bodyStart !== bodyStart) throw new Error(`${file}: its index module is not this table's (the header line ends elsewhere)`)
          header = { ...line.header }
          for (const [map, compact] of Object.entries(maps)) header[map] = Object.fromEntries(compactEntries(compact))
        } finally {
          fs.closeSync(fd)
        }
      }
      return header
    },
    has: (key) => parsed.has(key) || compactLookup(index, key) !== undefined,
    keys: () => compactEntries(index).map(([key]) => key),
    entry(key) {
      let value = parsed.get(key)
      if (value === undefined) {
        const where = compactLookup(index, key)
        if (where === undefined) return undefined
        value = JSON.parse(readAt(file, bodyStart + Number(where[0]), Number(where[1])))
        // A line that is not the one indexed means the index and the lines disagree.
        if (value?.key !== key) throw new Error(`${file}: the line at the offset of "${key}" is not its entry`)
        parsed.set(key, value)
      }
      return value
    },
    lookup: (map, key) => (Object.hasOwn(maps, map) ? compactLookup(maps[map], key)?.[0] : undefined),
  }
}

module.exports = { openIndexedLines }
