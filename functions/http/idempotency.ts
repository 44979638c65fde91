/** The `Idempotency-Key` request header: a caller's name for one operation, so its retries repeat nothing. */
import { createHash } from 'node:crypto';
import type { Request } from '@google-cloud/functions-framework';
import { HttpError } from './errors.js';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export function idempotencyKey(req: Request): string | undefined {
  const key = req.get('idempotency-key');
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new HttpError(400, 'INVALID_IDEMPOTENCY_KEY', 'Idempotency-Key must be 1-255 visible ASCII characters');
  }
  return key;
}

/**
 * The request id an operation's key names, the same on every retry (UUID-shaped, as every request
 * id is): creating the record under it is the deduplication, which holds with Redis down.
 */
export function keyedRequestId(scope: string, key: string): string {
  return derivedRequestId(`${scope}\n${key}`);
}

/** The request id `name` always maps to: its sha256, UUID-shaped as every request id is. */
export function derivedRequestId(name: string): string {
  const hex = createHash('sha256').update(name).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
