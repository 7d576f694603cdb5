/**
 * Where malformed JSON goes wrong, as line and column. JSON.parse names a position for some errors
 * only, and in a form that differs between Node versions; this scanner finds the first error's
 * offset itself (it runs only once JSON.parse has failed).
 */

export interface JsonSyntaxError {
  message: string
  /** 0-based offset of the first character that is not valid JSON (the text's length at its end). */
  offset: number
  /** 1-based. */
  line: number
  /** 1-based, in UTF-16 code units. */
  column: number
}

/** The first syntax error of `text` as JSON, or undefined when it is valid JSON. */
export function jsonSyntaxError(text: string): JsonSyntaxError | undefined {
  try {
    JSON.parse(text)
    return undefined
  } catch (e) {
    const offset = errorOffset(text) ?? text.length
    const raw = e instanceof Error ? e.message : String(e)
    const message = raw
      .replace(/ at position \d+.*$/s, '')
      .replace(/ in JSON$/, '')
      .replace(/, (\.\.\.)?".*"(\.\.\.)? is not valid JSON$/s, '')
    let line = 1
    let lineStart = 0
    for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
      line++
      lineStart = i + 1
    }
    return { message, offset, line, column: offset - lineStart + 1 }
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y
const HEX4 = /[0-9a-fA-F]{4}/y
const ESCAPES = '"\\/bfnrt'

/** The offset of the first syntax error (ECMA-404), or undefined when there is none. */
function errorOffset(text: string): number | undefined {
  const n = text.length
  const stack: string[] = [] // the open '{' and '['
  let i = 0
  const skipSpace = () => {
    while (i < n) {
      const c = text[i]
      if (c !== ' ' && c !== '\t' && c !== '\n' && c !== '\r') break
      i++
    }
  }
  /** At a '"': moves past the string; false (at the fault) when it is not a valid string. */
  const string = (): boolean => {
    i++
    while (i < n) {
      const c = text.charCodeAt(i)
      if (c === 0x22) {
        i++
        return true
      }
      if (c < 0x20) return false
      if (c === 0x5c) {
        const e = text[i + 1]
        if (e === 'u') {
          HEX4.lastIndex = i + 2
          if (!HEX4.test(text)) return false
          i += 6
        } else if (e !== undefined && ESCAPES.includes(e)) i += 2
        else return false
      } else i++
    }
    return false
  }
  let state: 'value' | 'key' | 'after' = 'value'
  for (;;) {
    skipSpace()
    if (state === 'value') {
      if (i >= n) return i
      const c = text[i]
      if (c === '{' || c === '[') {
        i++
        skipSpace()
        if (text[i] === (c === '{' ? '}' : ']')) {
          i++
          state = 'after'
        } else {
          stack.push(c)
          state = c === '{' ? 'key' : 'value'
        }
      } else if (c === '"') {
        if (!string()) return i
        state = 'after'
      } else if (c === 't' || c === 'f' || c === 'n') {
        const word = c === 't' ? 'true' : c === 'f' ? 'false' : 'null'
        for (const w of word) {
          if (text[i] !== w) return i
          i++
        }
        state = 'after'
      } else {
        NUMBER.lastIndex = i
        if (!NUMBER.test(text)) return i
        i = NUMBER.lastIndex
        state = 'after'
      }
    } else if (state === 'key') {
      if (text[i] !== '"' || !string()) return i
      skipSpace()
      if (text[i] !== ':') return i
      i++
      state = 'value'
    } else {
      const open = stack[stack.length - 1]
      if (open === undefined) return i < n ? i : undefined
      const c = text[i]
      if (c === ',') {
        i++
        state = open === '{' ? 'key' : 'value'
      } else if (c === (open === '{' ? '}' : ']')) {
        i++
        stack.pop()
      } else return i
    }
  }
}
