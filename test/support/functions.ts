import { after, before } from 'node:test';
import { startFirestore, type FirestoreEmulator } from '../../local/services/firestore-emulator.js';
import { serveFunctions, type ServedFunctions } from '../../local/services/functions.js';
import { startRedis, type RedisServer } from '../../local/services/redis-server.js';

/**
 * For a test file: a private Redis and Firestore emulator and the given targets served against
 * them, started before the file's tests and stopped after them. Requests are not dispatched to
 * Workflows unless `env` says AUTO_DISPATCH.
 */
export function serveWithStores(
  targets: string[],
  env: Record<string, string> = {},
): { url(target: string): string; redis(): RedisServer } {
  let redis: RedisServer | undefined;
  let firestore: FirestoreEmulator | undefined;
  let served: ServedFunctions | undefined;
  before(async () => {
    redis = await startRedis();
    firestore = await startFirestore();
    served = await serveFunctions(targets, {
      REDIS_URL: redis.url,
      FIRESTORE_EMULATOR_HOST: firestore.host,
      AUTO_DISPATCH: 'false',
      ...env,
    });
  });
  after(async () => {
    await served?.close();
    await redis?.stop();
    firestore?.stop();
  });
  return {
    url: (target) => {
      if (!served) throw new Error('functions are not served yet');
      return served.url(target);
    },
    redis: () => {
      if (!redis) throw new Error('redis is not started yet');
      return redis;
    },
  };
}
