import { readFile } from 'node:fs/promises'
import { type Document, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml'
import { type Issue, riffleError } from '../errors.js'
import { jsonSyntaxError } from '../json-syntax.js'

export type PathSegment = string | number

/** Formats a path the way the definitions file reads: `campaigns[0].outputs[1].pull.set.segment`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = ''
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`
  return out || '(root)'
}

/** A parsed definitions document and where each of its values came from. */
export interface SourceDocument {
  file: string | undefined
  value: unknown
  /** Line and column (1-based) of the value at `path`, or of its nearest located ancestor. */
  locate(path: readonly PathSegment[]): { line: number; column: number } | undefined
}

/** Builds an issue at a path, filled in with the file, line and column where known. */
export function issueAt(
  source: SourceDocument | undefined,
  path: readonly PathSegment[],
  message: string,
): Issue {
  const pos = source?.locate(path)
  return {
    path: formatPath(path),
    message,
    ...(source?.file ? { file: source.file } : {}),
    ...(pos ? { line: pos.line, column: pos.column } : {}),
  }
}

/**
 * Parses YAML (and so JSON) text; malformed text fails with line and column, nothing applied. A
 * `.json` file must be strict JSON (YAML would take a trailing comma or a single-quoted string).
 */
export function parseDefinitionsText(text: string, file?: string): SourceDocument {
  if (file && /\.json$/i.test(file)) {
    const e = jsonSyntaxError(text)
    if (e) {
      throw riffleError('RIFFLE_INVALID_JSON', `${file}:${e.line}:${e.column}: ${e.message}`, {
        issues: [{ path: '(document)', message: e.message, file, line: e.line, column: e.column }],
      })
    }
  }
  const lineCounter = new LineCounter()
  const doc: Document = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    const issues: Issue[] = doc.errors.map((e) => {
      const pos = e.linePos?.[0]
      return {
        path: '(document)',
        message: (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, ''),
        ...(file ? { file } : {}),
        ...(pos ? { line: pos.line, column: pos.col } : {}),
      }
    })
    const first = issues[0]!
    throw riffleError(
      'RIFFLE_INVALID_YAML',
      `${file ?? 'definitions'}${first.line ? `:${first.line}:${first.column}` : ''}: ${first.message}`,
      { issues },
    )
  }
  const value = doc.toJS({ maxAliasCount: 100 }) ?? {}
  return {
    file,
    value,
    locate(path) {
      for (let n = path.length; n >= 0; n--) {
        const node = doc.getIn(path.slice(0, n), true) as unknown
        const range = isScalar(node) || isMap(node) || isSeq(node) ? node.range : undefined
        if (range) {
          const p = lineCounter.linePos(range[0])
          return { line: p.line, column: p.col }
        }
      }
      return undefined
    },
  }
}

export async function readDefinitionsFile(file: string): Promise<SourceDocument> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw riffleError('RIFFLE_BAD_REQUEST', `${file}: cannot read the file (${code ?? String(e)})`, {
      cause: e,
    })
  }
  return parseDefinitionsText(text, file)
}

/** A source for a value that came as parsed JSON (an API body): paths, no lines. */
export function objectSource(value: unknown): SourceDocument {
  return { file: undefined, value, locate: () => undefined }
}
