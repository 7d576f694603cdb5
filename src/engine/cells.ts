/**
 * Cell assignment by a stable hash of campaign and customer key, so that a customer stays in one
 * cell across events, restarts and processes.
 */

/** FNV-1a, 32 bit: fast, stable across platforms and versions. */
export function stableHash(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

export interface CellPlan {
  holdoutPercent: number
  variants: Array<{ name: string; weight: number }>
}

export const HOLDOUT = 'holdout'
export const DEFAULT_CELL = 'default'

/** The cell for a key: `holdout`, a variant's name, or `default`. */
export function assignCell(plan: CellPlan, campaign: string, key: string): string {
  const bucket = stableHash(`${campaign}\u0000${key}`) % 10_000
  if (bucket < plan.holdoutPercent * 100) return HOLDOUT
  if (plan.variants.length === 0) return DEFAULT_CELL
  // A second, independent hash picks the variant, so the holdout share does not skew the split.
  const total = plan.variants.reduce((s, v) => s + v.weight, 0)
  let point = (stableHash(`${key}\u0000${campaign}\u0000variant`) / 0x1_0000_0000) * total
  for (const v of plan.variants) {
    if (point < v.weight) return v.name
    point -= v.weight
  }
  return plan.variants[plan.variants.length - 1]!.name
}
