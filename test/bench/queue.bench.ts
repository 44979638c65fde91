/**
 * `npm run bench:queue`: operations per second of the queue's scripts (enqueue, next, complete)
 * beside the same Redis commands issued raw, one by one, on the same private server in the same run.
 */
import { randomUUID } from 'node:crypto';
import { createLogger } from '../../lib/log.js';
import { connectRedis, type RedisClient } from '../../functions/redis/connection.js';
import { QueueService } from '../../functions/queue/service.js';
import { startRedis } from '../../local/services/redis-server.js';

const OPERATIONS = Number(process.env.BENCH_OPERATIONS ?? 20000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);

async function measure(operation: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < OPERATIONS; i = next++) await operation(i);
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return OPERATIONS / seconds;
}

/** What each script does, as individual commands (neither atomic nor safe: the baseline only). */
function rawOperations(client: RedisClient) {
  const prefix = '{raw}:';
  const ids: string[] = [];
  return {
    enqueue: async (i: number) => {
      const id = randomUUID();
      ids[i] = id;
      const seq = await client.incr(prefix + 'seq');
      await client.hSet(prefix + 'req:' + id, {
        id,
        session_id: 's',
        input_uri: 'gs://b/v.mp4',
        priority: 5,
        params: '{}',
        status: 'QUEUED',
        attempts: 0,
        seq,
        created_at: Date.now(),
        updated_at: Date.now(),
      });
      await client.zAdd(prefix + 'queue', { score: 4 * 2 ** 44 + seq, value: id });
      await client.hIncrBy(prefix + 'counts', 'QUEUED', 1);
      await client.hIncrBy(prefix + 'counts', 'QUEUED:5', 1);
      await client.zRank(prefix + 'queue', id);
    },
    next: async () => {
      const popped = await client.zPopMin(prefix + 'queue');
      if (!popped) return;
      const key = prefix + 'req:' + popped.value;
      await client.hGet(key, 'priority');
      await client.hIncrBy(key, 'attempts', 1);
      await client.hSet(key, {
        status: 'PROCESSING',
        started_at: Date.now(),
        lease_id: randomUUID(),
        lease_expires_at: Date.now() + 900000,
      });
      await client.zAdd(prefix + 'leases', { score: Date.now() + 900000, value: popped.value });
      await client.hIncrBy(prefix + 'counts', 'QUEUED', -1);
      await client.hIncrBy(prefix + 'counts', 'PROCESSING', 1);
      await client.hGetAll(key);
    },
    complete: async (i: number) => {
      const id = ids[i]!;
      const key = prefix + 'req:' + id;
      await client.hGet(key, 'status');
      await client.hSet(key, { status: 'COMPLETED', updated_at: Date.now(), finished_at: Date.now() });
      await client.zRem(prefix + 'leases', id);
      await client.hDel(key, ['lease_id', 'lease_expires_at']);
      await client.zAdd(prefix + 'finished', { score: Date.now(), value: id });
      await client.expire(key, 604800);
      await client.hIncrBy(prefix + 'counts', 'PROCESSING', -1);
      await client.hGetAll(key);
    },
  };
}

async function main(): Promise<void> {
  const server = await startRedis();
  const log = createLogger({ level: 'ERROR' });
  const connection = connectRedis({ url: server.url, connectTimeoutMs: 2000 }, log);
  const queue = new QueueService(connection, {
    keyPrefix: 'bench',
    leaseSeconds: 900,
    maxAttempts: 3,
    retentionSeconds: 604800,
  });
  try {
    const ids: string[] = [];
    const scripted = {
      enqueue: await measure(async (i) => {
        ids[i] = (await queue.enqueue({ session_id: 's', input: { uri: 'gs://b/v.mp4' } })).request_id;
      }),
      next: await measure(() => queue.next()),
      complete: await measure(async (i) => {
        await queue.update(ids[i]!, { status: 'COMPLETED' });
      }),
    };
    const raw = await connection.run(async (client) => {
      const operations = rawOperations(client);
      return {
        enqueue: await measure(operations.enqueue),
        next: await measure(operations.next),
        complete: await measure(operations.complete),
      };
    });

    process.stdout.write(
      `queue benchmark: ${OPERATIONS} operations per kind, ${CONCURRENCY} concurrent callers, redis-server on loopback\n`,
    );
    process.stdout.write('operation   scripted ops/s   raw commands ops/s   scripted/raw\n');
    for (const name of ['enqueue', 'next', 'complete'] as const) {
      const line = `${name.padEnd(10)}  ${scripted[name].toFixed(0).padStart(14)}   ${raw[name].toFixed(0).padStart(18)}   ${(scripted[name] / raw[name]).toFixed(2).padStart(12)}\n`;
      process.stdout.write(line);
    }
  } finally {
    await connection.close();
    await server.stop();
  }
}

await main();
