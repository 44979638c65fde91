/**
 * Entry point of every Cloud Function (package.json `main`). Configuration is read and validated
 * here, once, so a bad deployment stops at start-up with the variable named.
 */
import * as functions from '@google-cloud/functions-framework';
import { createLogger } from '../lib/log.js';
import { captureBodyErrors } from './http/body.js';
import { HttpError, sendError } from './http/errors.js';
import { loadQueueConfig } from './queue/config.js';
import { queueRoutes } from './queue/routes.js';
import { queueScripts } from './queue/scripts.js';
import { QueueService } from './queue/service.js';
import { connectRedis, RedisUnavailableError } from './redis/connection.js';

captureBodyErrors();

const config = loadQueueConfig();
const log = createLogger({ level: config.LOG_LEVEL });
const redis = connectRedis(
  {
    url: config.REDIS_URL,
    password: config.REDIS_PASSWORD,
    tlsCa: config.REDIS_TLS_CA,
    connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS,
  },
  log,
);
const queue = new QueueService(redis, queueScripts(), {
  keyPrefix: config.REDIS_KEY_PREFIX,
  leaseSeconds: config.QUEUE_LEASE_SECONDS,
  maxAttempts: config.QUEUE_MAX_ATTEMPTS,
  retentionSeconds: config.QUEUE_RETENTION_SECONDS,
});

functions.http('queue', queueRoutes(queue, log));

/** Returns expired leases to the queue (or fails them); for Cloud Scheduler, every minute. */
functions.http('expireLeases', async (_req, res) => {
  try {
    const expired = await queue.expireLeases();
    for (const lease of expired) log.warning('lease expired', { request_id: lease.request_id, outcome: lease.outcome });
    res.status(200).json({ expired });
  } catch (error) {
    if (error instanceof RedisUnavailableError) {
      return sendError(
        res,
        new HttpError(503, 'UNAVAILABLE', 'the queue store is unreachable; retry later', { 'Retry-After': '5' }),
      );
    }
    log.error('lease expiry failed', { error });
    sendError(res, new HttpError(500, 'INTERNAL', 'internal error'));
  }
});

/** Closes the Redis connection (tests, and a host that wants a clean shutdown). */
export const shutdown = (): Promise<void> => redis.close();
