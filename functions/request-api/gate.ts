/**
 * The admission gate: deduplication, then the per-caller sliding-window rate limit, in one atomic
 * Lua step in Redis (`lua/admit.lua`). Identical retries (the same body, or the same
 * Idempotency-Key, within the dedup window) get the first call's answer and are never counted,
 * so a burst of retries of one request is answered, not refused with 429.
 */
import { createHash, randomUUID } from 'node:crypto';
import { HttpError } from '../http/errors.js';
import type { RedisConnection } from '../redis/connection.js';
import { redisScripts, type RedisScripts } from '../redis/scripts.js';
import type { DedupAnswer } from './dedup.js';

export type GateDecision =
  { kind: 'first' | 'duplicate'; answer: DedupAnswer } | { kind: 'limited'; retryAfterSeconds: number };

export class AdmissionGate {
  private readonly scripts: RedisScripts<'admit'>;

  constructor(
    private readonly redis: RedisConnection,
    private readonly settings: { keyPrefix: string; limit: number; windowMs: number; dedupWindowSeconds: number },
  ) {
    this.scripts = redisScripts(redis, new URL('./lua/', import.meta.url), ['admit']);
  }

  /** `dedupKey` scopes the call (dedup.ts); `fresh` is the answer a first call gets. */
  async pass(caller: string, dedupKey: string, fresh: DedupAnswer): Promise<GateDecision> {
    const [outcome, detail] = await this.run(caller, `dedup:${dedupKey}`, JSON.stringify(fresh));
    if (outcome === 'LIMITED') return { kind: 'limited', retryAfterSeconds: Math.ceil(Number(detail) / 1000) };
    return { kind: outcome === 'FIRST' ? 'first' : 'duplicate', answer: JSON.parse(detail) as DedupAnswer };
  }

  /** A rate-limit slot alone, for calls with nothing to deduplicate; throws the 429 a caller over its limit gets. */
  async enforce(caller: string): Promise<void> {
    // The script names a dedup key even when it remembers nothing: every key a script touches is passed in.
    const [outcome, detail] = await this.run(caller, 'dedup:none', '');
    if (outcome === 'LIMITED') throw rateLimited(Math.ceil(Number(detail) / 1000));
  }

  private async run(caller: string, dedupKey: string, fresh: string): Promise<[string, string]> {
    const prefix = `{${this.settings.keyPrefix}}`;
    // Hashed: caller emails are not spelled out in key names.
    const rateKey = `${prefix}:rate:${createHash('sha256').update(caller).digest('hex')}`;
    return (await this.redis.run((client) =>
      this.scripts.run(
        client,
        'admit',
        [`${prefix}:${dedupKey}`, rateKey],
        [
          fresh,
          String(this.settings.dedupWindowSeconds),
          String(this.settings.limit),
          String(this.settings.windowMs),
          randomUUID(),
        ],
      ),
    )) as [string, string];
  }
}

/** The 429 (with Retry-After) a caller over its rate limit gets. */
export function rateLimited(retryAfterSeconds: number): HttpError {
  return new HttpError(429, 'RATE_LIMITED', 'too many requests from this caller; retry later', {
    'Retry-After': String(retryAfterSeconds),
  });
}
