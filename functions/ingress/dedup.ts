/**
 * Deduplication of calls within a window: the first call claims a Redis key (SET NX EX) holding
 * its answer; a repeat inside the window reads that answer back instead of starting new work.
 */
import { createHash } from 'node:crypto';
import type { RedisConnection } from '../redis/connection.js';

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

export class Deduplicator {
  constructor(
    private readonly redis: RedisConnection,
    private readonly settings: { keyPrefix: string; windowSeconds: number },
  ) {}

  /** The answer to give: `fresh` if this call is the first in the window, else the first call's. */
  async claim(key: string, fresh: DedupAnswer): Promise<{ first: boolean; answer: DedupAnswer }> {
    const redisKey = `{${this.settings.keyPrefix}}:dedup:${key}`;
    return this.redis.run(async (client) => {
      // Two rounds cover a key that expires between the failed SET and the GET.
      for (let round = 0; round < 2; round++) {
        const set = await client.set(redisKey, JSON.stringify(fresh), {
          condition: 'NX',
          expiration: { type: 'EX', value: this.settings.windowSeconds },
        });
        if (set === 'OK') return { first: true, answer: fresh };
        const existing = await client.get(redisKey);
        if (existing) return { first: false, answer: JSON.parse(existing) as DedupAnswer };
      }
      throw new Error('dedup key neither settable nor readable');
    });
  }
}
