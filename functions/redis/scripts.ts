/**
 * Lua scripts run in Redis: read once from their files, loaded with SCRIPT LOAD whenever a connection
 * becomes ready, and called by SHA. A server that lost its script cache (restart, failover) answers
 * NOSCRIPT; the script is then loaded again and the call repeated once.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RedisClient, RedisConnection } from './connection.js';

export interface RedisScripts<Name extends string> {
  load(client: RedisClient): Promise<void>;
  run(client: RedisClient, name: Name, keys: string[], args: string[]): Promise<unknown>;
}

/** Prepended to every script: the server clock and integer formatting. */
const PRELUDE = new URL('./lua/prelude.lua', import.meta.url);

/**
 * The scripts `<folder>/<name>.lua`, each after this folder's prelude and then `shared` (helpers of one
 * script set), loaded into Redis each time `redis` becomes ready.
 */
export function redisScripts<Name extends string>(
  redis: RedisConnection,
  folder: URL,
  names: readonly Name[],
  shared: URL[] = [],
): RedisScripts<Name> {
  const head = [PRELUDE, ...shared].map((file) => readFileSync(file, 'utf8'));
  const scripts = new Map(
    names.map((name) => {
      const source = [...head, readFileSync(new URL(`${name}.lua`, folder), 'utf8')].join('\n');
      return [name, { source, sha: createHash('sha1').update(source).digest('hex') }] as const;
    }),
  );
  const load = async (client: RedisClient): Promise<void> => {
    await Promise.all([...scripts.values()].map((script) => client.scriptLoad(script.source)));
  };
  redis.onReady(load);
  return {
    load,
    async run(client, name, keys, args) {
      const { sha } = scripts.get(name)!;
      try {
        return await client.evalSha(sha, { keys, arguments: args });
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        await load(client);
        return client.evalSha(sha, { keys, arguments: args });
      }
    },
  };
}
