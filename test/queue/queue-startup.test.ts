import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, it } from 'node:test';
import { freePort } from '../../local/services/ports.js';
import { startRedis, type RedisServer } from '../../local/services/redis-server.js';

// The real `functions-framework` command, from the repository root, serving package.json's `main`.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = fileURLToPath(new URL('../../../node_modules/.bin/functions-framework', import.meta.url));

let redis: RedisServer;
before(async () => (redis = await startRedis()));
after(async () => redis.stop());

function startCli(env: Record<string, string>, port: number) {
  const child = spawn(cli, ['--target=queue', `--port=${port}`], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', METADATA_SERVER_DETECTION: 'none', ...env },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, exited, output: () => output };
}

for (const [env, named] of [
  [{}, /REDIS_URL is required/],
  [{ REDIS_URL: 'http://127.0.0.1:6379' }, /REDIS_URL must match/],
  [{ REDIS_URL: 'redis://127.0.0.1:6379', QUEUE_MAX_ATTEMPTS: 'three' }, /QUEUE_MAX_ATTEMPTS must be integer/],
  [{ REDIS_URL: 'redis://127.0.0.1:6379', LOG_LEVEL: 'LOUD' }, /LOG_LEVEL must be equal to one of the allowed values/],
] as const) {
  it(`refuses to start and names the problem: ${String(named)}`, async () => {
    const run = startCli(env, await freePort());
    const code = await run.exited;
    assert.notEqual(code, 0);
    assert.match(run.output(), named);
  });
}

it('serves the queue from the compiled entry point with a valid configuration', async () => {
  const port = await freePort();
  const run = startCli({ REDIS_URL: redis.url }, port);
  try {
    let response: Response | undefined;
    for (let i = 0; i < 100 && !response; i++) {
      response = await fetch(`http://127.0.0.1:${port}/queue`).catch(() => undefined);
      if (!response) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(response?.status, 200);
    const body = (await response.json()) as { queue_length: number };
    assert.equal(body.queue_length, 0);
  } finally {
    run.child.kill();
    await run.exited;
  }
});
