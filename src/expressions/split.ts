/**
 * Splits a CEL condition at its top-level `&&` into the part that needs only the event (run before
 * any Pull Marketing lookup) and the rest (run after enrichment). `&&` is commutative in CEL, so
 * the split keeps the meaning; a condition with a top-level `||` stays whole.
 */

interface Token {
  text: string
  ident: boolean
  afterDot: boolean
}

function tokenize(expr: string): Token[] {
  const out: Token[] = []
  let i = 0
  let prevDot = false
  while (i < expr.length) {
    const c = expr[i]!
    if (c === '"' || c === "'") {
      const triple = expr.startsWith(c.repeat(3), i)
      const end = triple ? c.repeat(3) : c
      let j = i + end.length
      while (j < expr.length && !expr.startsWith(end, j)) j += expr[j] === '\\' ? 2 : 1
      out.push({ text: expr.slice(i, j + end.length), ident: false, afterDot: false })
      i = j + end.length
      prevDot = false
      continue
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1
      while (j < expr.length && /[A-Za-z0-9_]/.test(expr[j]!)) j++
      // raw or bytes string prefixes: r"..." b"..."
      if (/^[rRbB]{1,2}$/.test(expr.slice(i, j)) && (expr[j] === '"' || expr[j] === "'")) {
        i = j
        continue
      }
      out.push({ text: expr.slice(i, j), ident: true, afterDot: prevDot })
      i = j
      prevDot = false
      continue
    }
    if (/\s/.test(c)) {
      out.push({ text: c, ident: false, afterDot: false })
      i++
      continue
    }
    const two = expr.slice(i, i + 2)
    const op = ['&&', '||', '==', '!=', '<=', '>=', '?.'].includes(two) ? two : c
    out.push({ text: op, ident: false, afterDot: false })
    prevDot = op === '.' || op === '?.'
    i += op.length
  }
  return out
}

/** The top-level conjuncts of `expr`, or [expr] when it has none or has a top-level `||` or `?:`. */
export function conjuncts(expr: string): string[] {
  const tokens = tokenize(expr)
  const parts: string[] = []
  let depth = 0
  let current = ''
  for (const t of tokens) {
    if (t.text === '(' || t.text === '[' || t.text === '{') depth++
    else if (t.text === ')' || t.text === ']' || t.text === '}') depth--
    if (depth === 0 && (t.text === '||' || t.text === '?')) return [expr.trim()]
    if (depth === 0 && t.text === '&&') {
      parts.push(current.trim())
      current = ''
    } else current += t.text
  }
  parts.push(current.trim())
  return parts.filter((p) => p.length > 0)
}

/** Names a part of an expression refers to (identifiers not after a dot). */
export function rootNames(expr: string): Set<string> {
  return new Set(
    tokenize(expr)
      .filter((t) => t.ident && !t.afterDot)
      .map((t) => t.text),
  )
}

export function splitWhere(
  expr: string,
  aliases: ReadonlySet<string>,
): { eventOnly: string | undefined; rest: string | undefined } {
  const pre: string[] = []
  const post: string[] = []
  for (const part of conjuncts(expr)) {
    const names = rootNames(part)
    ;([...names].some((n) => aliases.has(n)) ? post : pre).push(part)
  }
  const join = (xs: string[]) =>
    xs.length === 0 ? undefined : xs.length === 1 ? xs[0] : xs.map((x) => `(${x})`).join(' && ')
  return { eventOnly: join(pre), rest: join(post) }
}
