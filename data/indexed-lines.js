'use strict'

// Reads the generated tables of this folder, in the format scripts/indexed_lines.py writes: JSON
// Lines whose first line, the header, lists each entry's key, byte offset (after the header line) and
// length. Opening a table reads the header alone; an entry is read from disk and parsed the first time
// it is looked up, so a process pays for the few services it uses, not for the whole table.

const fs = require('node:fs')
const path = require('node:path')
const PACKAGE_ROOT = require('../package-root.js')

/** The header is read in pieces of this size until its newline (the tables' headers fit in one). */
const HEADER_CHUNK_BYTES = 32 * 1024
const NEWLINE = 0x0a

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
 * Opens a table (`name` in this folder, or a path): `header` (without its index), `has(key)`, `keys()`,
 * and `entry(key)`, the parsed line of that key (undefined for a key the table does not hold). Throws
 * when the file cannot be read.
 */
function openIndexedLines(name) {
  const file = path.resolve(PACKAGE_ROOT, 'data', name)
  const fd = fs.openSync(file, 'r')
  let header
  let bodyStart
  try {
    ;({ header, bodyStart } = readHeader(fd))
  } finally {
    fs.closeSync(fd)
  }
  const { index, ...rest } = header
  if (!Array.isArray(index)) throw new Error(`${file} has no index`)
  let where
  /**
   * Each key's index entry, `[key, offset, length]`, made on the first lookup (a plain loop over the
   * entries as parsed: this runs once per process, before V8 has optimised anything).
   */
  const lines = () => {
    if (where === undefined) {
      where = new Map()
      for (let i = 0; i < index.length; i++) where.set(index[i][0], index[i])
    }
    return where
  }
  const parsed = new Map()
  const has = (key) => lines().has(key)
  return {
    header: rest,
    has,
    keys: () => [...lines().keys()],
    entry(key) {
      if (!has(key)) return undefined
      let value = parsed.get(key)
      if (value === undefined) {
        const [, offset, length] = lines().get(key)
        value = JSON.parse(readAt(file, bodyStart + offset, length))
        // A line that is not the one indexed means the index and the lines disagree.
        if (value?.key !== key) throw new Error(`${file}: the line at the offset of "${key}" is not its entry`)
        parsed.set(key, value)
      }
      return value
    },
  }
}

module.exports = { openIndexedLines }
