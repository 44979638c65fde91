/**
 * Serves a function target through the Functions Framework's own server (the one `functions-framework`
 * runs), on a free loopback port. The functions module reads its configuration when loaded, so the
 * environment is set first.
 */
import type { Server } from 'node:http';
import { after, before } from 'node:test';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { startFirestore, type FirestoreEmulator } from '../../local/services/firestore-emulator.js';
import { startRedis, type RedisServer } from '../../local/services/redis-server.js';

export interface ServedFunctions {
  url(target: string): string;
  close(): Promise<void>;
}

/** `ports` pins a target's port (a URL the functions must know when they load, such as STATUS_URL's). */
export async function serveFunctions(
  targets: string[],
  env: Record<string, string>,
  ports: Record<string, number> = {},
): Promise<ServedFunctions> {
  Object.assign(process.env, { LOG_LEVEL: 'ERROR', METADATA_SERVER_DETECTION: 'none' }, env);
  const { shutdown } = await import('../../functions/index.js');
  const servers = new Map<string, { server: Server; url: string }>();
  for (const target of targets) {
    const server = getTestServer(target);
    await new Promise<void>((resolve) => server.listen(ports[target] ?? 0, '127.0.0.1', resolve));
    const address = server.address();
    if (typeof address !== 'object' || !address) throw new Error('server has no address');
    servers.set(target, { server, url: `http://127.0.0.1:${address.port}` });
  }
  return {
    url(target) {
      const served = servers.get(target);
      if (!served) throw new Error(`target ${target} is not served`);
      return served.url;
    },
    async close() {
      for (const { server } of servers.values()) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
      await shutdown();
    },
  };
}

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
