/** Per-caller sliding-window rate limit, one atomic Lua step in Redis (`queue/lua/ratelimit.lua`). */
import { createHash, randomUUID } from 'node:crypto';
import { HttpError } from '../http/errors.js';
import type { QueueScripts } from '../queue/scripts.js';
import type { RedisConnection } from '../redis/connection.js';

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export class RateLimiter {
  constructor(
    private readonly redis: RedisConnection,
    private readonly scripts: QueueScripts,
    private readonly settings: { keyPrefix: string; limit: number; windowMs: number },
  ) {}

  async take(caller: string): Promise<RateDecision> {
    // Hashed: caller emails are not spelled out in key names.
    const key = `{${this.settings.keyPrefix}}:rate:${createHash('sha256').update(caller).digest('hex')}`;
    const wait = await this.redis.run((client) =>
      this.scripts.run(
        client,
        'ratelimit',
        [key],
        [String(this.settings.limit), String(this.settings.windowMs), randomUUID()],
      ),
    );
    const ms = Number(wait);
    return ms === 0 ? { allowed: true } : { allowed: false, retryAfterSeconds: Math.ceil(ms / 1000) };
  }

  /** Takes a slot, or throws the 429 (with Retry-After) a caller over its limit gets. */
  async enforce(caller: string): Promise<void> {
    const rate = await this.take(caller);
    if (!rate.allowed) {
      throw new HttpError(429, 'RATE_LIMITED', 'too many requests from this caller; retry later', {
        'Retry-After': String(rate.retryAfterSeconds),
      });
    }
  }
}
