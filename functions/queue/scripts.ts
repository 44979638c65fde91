/**
 * The queue's Lua scripts: read once from `lua/`, loaded into Redis with SCRIPT LOAD whenever a
 * connection becomes ready, and called by SHA. A server that lost its script cache (restart,
 * failover) answers NOSCRIPT; the script is then loaded again and the call repeated once.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RedisClient } from '../redis/connection.js';

const SCRIPT_NAMES = [
  'enqueue',
  'lease-next',
  'expire-leases',
  'set-status',
  'stats',
  'requeue-unstarted',
  'gate',
  'resize-lease',
] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

interface Script {
  source: string;
  sha: string;
}

const luaFile = (name: string): string => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');

function readScripts(): Record<ScriptName, Script> {
  const common = luaFile('common');
  const entries = SCRIPT_NAMES.map((name) => {
    const source = `${common}\n${luaFile(name)}`;
    return [name, { source, sha: createHash('sha1').update(source).digest('hex') }] as const;
  });
  return Object.fromEntries(entries) as Record<ScriptName, Script>;
}

export interface QueueScripts {
  load(client: RedisClient): Promise<void>;
  run(client: RedisClient, name: ScriptName, keys: string[], args: string[]): Promise<unknown>;
}

export function queueScripts(): QueueScripts {
  const scripts = readScripts();
  const load = async (client: RedisClient): Promise<void> => {
    await Promise.all(Object.values(scripts).map((script) => client.scriptLoad(script.source)));
  };
  return {
    load,
    async run(client, name, keys, args) {
      const { sha } = scripts[name];
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
