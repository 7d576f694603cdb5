/**
 * The Pull Marketing database: small, pre-computed, per-customer records in keyed collections.
 * One interface, three adapters (embedded SQLite, MongoDB, Redis), one contract test suite
 * (test/pull/contract.test.ts). The physical layout of each backend is in docs/pull-store.md.
 *
 * Errors: a bad key, value or field is RIFFLE_BAD_REQUEST (checked for the whole batch before
 * anything is written); a collection the store was not prepared for is RIFFLE_UNKNOWN_COLLECTION;
 * a server that cannot be reached is RIFFLE_STORE_UNAVAILABLE (retryable).
 */
import type { Collection } from '../definitions/schema.js'

/** A record's fields, with the metadata every adapter keeps. */
export interface PullRecord {
  key: string
  /** Canonical values (see values.ts): timestamps are ISO 8601 strings. */
  fields: Record<string, unknown>
  /** When the record was last written (ISO 8601). */
  updatedAt: string
  /** Who wrote it last: `campaign:<name>@<version>`, `load:<id>`, `admin:<keyId>`. */
  writer: string
  /** Event time of the last write that carried one (epoch ms), used by "only if newer". */
  eventTime?: number
}

/** A record as the Pull API sends it, with the fields still as JSON text (see PullStore.getJson). */
export interface PullRecordJson {
  key: string
  /** When the record was last written (epoch ms). */
  updatedAt: number
  /** The fields as one JSON object, canonical values (see values.ts). */
  fieldsJson: string
}

/** One field-level change of one record. */
export interface PullWrite {
  key: string
  /** Fields set (a merge: other fields are left as they are). A null value unsets the field. */
  set?: Record<string, unknown>
  /** Fields removed. */
  unset?: string[]
  /** Delete the whole record instead. */
  delete?: boolean
  /** Event time of the change (epoch ms); stored with the record when given. */
  eventTime?: number
  /** Apply only if the record is absent or its stored event time is not later than `eventTime`. */
  onlyIfNewer?: boolean
  writer: string
}

export interface ScanPage {
  records: PullRecord[]
  /** Pass as `after` for the next page; undefined at the end. */
  next: string | undefined
}

export interface PullStore {
  /** `sqlite`, `mongodb` or `redis`. */
  readonly kind: string
  /** Where the data lives, with any password redacted (for logs and readiness). */
  readonly description: string
  /**
   * Makes the store ready for exactly these collections (tables, indexes, field types, TTL);
   * called whenever definitions change. Data of collections left out stays where it is.
   */
  prepare(collections: Collection[]): Promise<void>
  get(collection: string, key: string, fields?: string[]): Promise<PullRecord | undefined>
  /**
   * Optional: get() with every field left as JSON text, for a store that holds them so (SQLite).
   * The Pull API uses it to skip a parse and a stringify per read.
   */
  getJson?(collection: string, key: string): Promise<PullRecordJson | undefined>
  /** One batched lookup; the result has an entry (or undefined) per requested key, in order. */
  getMany(collection: string, keys: string[]): Promise<Array<PullRecord | undefined>>
  /**
   * Applies a batch of writes, in order. Every write is checked first: one bad write rejects the
   * batch and nothing is written. Each record's write is all-or-nothing. `skipped` counts writes
   * that changed nothing: older than the stored event time with `onlyIfNewer`, or deleting an
   * absent record.
   */
  write(collection: string, writes: PullWrite[]): Promise<{ applied: number; skipped: number }>
  /** Records in key order (UTF-8 byte order), after the `after` key. */
  scan(collection: string, opts: { after?: string; limit: number }): Promise<ScanPage>
  ping(): Promise<void>
  close(): Promise<void>
}
