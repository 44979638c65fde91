/**
 * The admission gate: deduplication, then the per-caller sliding-window rate limit, in one atomic
 * Lua step in Redis (`queue/lua/gate.lua`). Identical retries (the same body, or the same
 * Idempotency-Key, within the dedup window) get the first call's answer and are never counted,
 * so a burst of retries of one request is answered, not refused with 429.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { QueueScripts } from '../queue/scripts.js';
import type { RedisConnection } from '../redis/connection.js';
import type { DedupAnswer } from './dedup.js';

export type GateDecision =
  { kind: 'first' | 'duplicate'; answer: DedupAnswer } | { kind: 'limited'; retryAfterSeconds: number };

export class AdmissionGate {
  constructor(
    private readonly redis: RedisConnection,
    private readonly scripts: QueueScripts,
    private readonly settings: { keyPrefix: string; limit: number; windowMs: number; dedupWindowSeconds: number },
  ) {}

  /** `dedupKey` scopes the call (dedup.ts); `fresh` is the answer a first call gets. */
  async pass(caller: string, dedupKey: string, fresh: DedupAnswer): Promise<GateDecision> {
    const prefix = `{${this.settings.keyPrefix}}`;
    // Hashed: caller emails are not spelled out in key names.
    const rateKey = `${prefix}:rate:${createHash('sha256').update(caller).digest('hex')}`;
    const [outcome, detail] = (await this.redis.run((client) =>
      this.scripts.run(
        client,
        'gate',
        [`${prefix}:dedup:${dedupKey}`, rateKey],
        [
          JSON.stringify(fresh),
          String(this.settings.dedupWindowSeconds),
          String(this.settings.limit),
          String(this.settings.windowMs),
          randomUUID(),
        ],
      ),
    )) as [string, string];
    if (outcome === 'LIMITED') return { kind: 'limited', retryAfterSeconds: Math.ceil(Number(detail) / 1000) };
    return { kind: outcome === 'FIRST' ? 'first' : 'duplicate', answer: JSON.parse(detail) as DedupAnswer };
  }
}
