/**
 * What makes two calls the same (for deduplication within a window, `gate.ts`): the caller, the
 * route and the Idempotency-Key, or else the body in canonical form; and the answer a repeat gets.
 */
import { createHash } from 'node:crypto';

export interface DedupAnswer {
  request_id: string;
  callback_token: string;
}

/** JSON with object keys sorted at every level, so equal requests give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Scoped to the caller, so nobody can learn another caller's request through a shared key. */
export function dedupKey(caller: string, route: string, idempotencyKey: string | undefined, body: unknown): string {
  const basis = idempotencyKey === undefined ? `body:${canonicalJson(body)}` : `key:${idempotencyKey}`;
  return createHash('sha256').update(`${caller}\n${route}\n${basis}`).digest('hex');
}
