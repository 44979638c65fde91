/**
 * `npm run local` — the whole backend on one machine, no cloud account: Redis on a free loopback port,
 * the Firestore emulator (when `@firestore-emulator/server` is installed), every function target that
 * functions/index.ts registers (each in its own Functions Framework process), and the local API
 * (Workflows Executions backed by the interpreter running workflows/reconstruct.yaml with the jobs
 * launcher; media uploads into the local bucket). Prints the URLs; Ctrl-C stops everything it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../lib/log.js';
// The tests' helpers already start a private redis-server on a free port and find free ports.
import { freePort } from '../test/support/ports.js';
import { listening, startRedis } from '../test/support/redis-server.js';
import { startLocalApi } from './api.js';
import { LocalBucket } from './bucket.js';
import { loadDefinitions } from './jobs/definitions.js';
import { LOCAL_PROJECT, LOCAL_REGION, reconstructInterpreter } from './runtime.js';

const REPOSITORY = fileURLToPath(new URL('../../', import.meta.url));
const FUNCTIONS_ENTRY = resolve(REPOSITORY, 'dist/functions/index.js');

/** Function targets the entry point registers, read from its compiled source (no config needed to list them). */
export function functionTargets(source: string): Array<{ target: string; kind: 'http' | 'cloudEvent' }> {
  return [...source.matchAll(/functions\.(http|cloudEvent)\(\s*['"]([A-Za-z0-9_]+)['"]/g)].map((match) => ({
    kind: match[1] as 'http' | 'cloudEvent',
    target: match[2]!,
  }));
}

interface FirestoreServer {
  start(port: number): Promise<void>;
  stop(): void;
}

/** The Firestore emulator, if its package is installed (the ingress functions bring it). */
async function startFirestore(): Promise<{ host: string; stop(): void } | undefined> {
  const name = '@firestore-emulator/server';
  let module: { FirestoreServer: new () => FirestoreServer };
  try {
    module = (await import(name)) as typeof module;
  } catch {
    return undefined;
  }
  const port = await freePort();
  const server = new module.FirestoreServer();
  await server.start(port);
  return { host: `127.0.0.1:${port}`, stop: () => server.stop() };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: '.splatflow-local' },
      bucket: { type: 'string', default: 'splatflow-local' },
      'api-port': { type: 'string', default: '0' },
    },
  });
  const log = createLogger({
    level: (process.env.LOG_LEVEL as 'INFO' | undefined) ?? 'INFO',
    fields: { component: 'stack' },
  });
  const children: ChildProcess[] = [];
  const stops: Array<() => Promise<void> | void> = [];
  let stopping = false;
  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    for (const stopOne of stops.reverse()) await stopOne();
    log.info('local stack stopped');
    process.exit(code);
  };
  process.once('SIGINT', () => void stop(0));
  process.once('SIGTERM', () => void stop(0));

  try {
    const root = resolve(values.data);
    await mkdir(root, { recursive: true });
    const redis = await startRedis();
    stops.push(() => redis.stop());
    const firestore = await startFirestore();
    if (firestore) stops.push(() => firestore.stop());

    const targets = functionTargets(readFileSync(FUNCTIONS_ENTRY, 'utf8'));
    const ports = new Map<string, number>();
    for (const { target } of targets) ports.set(target, await freePort());
    const url = (target: string): string | undefined =>
      ports.has(target) ? `http://127.0.0.1:${ports.get(target)}` : undefined;

    const bucket = new LocalBucket({
      root,
      uploadsPrefix: 'uploads/',
      eventUrl: url('onUpload'),
      log: log.child({ component: 'bucket' }),
    });
    const queueUrl = url('queue');
    if (!queueUrl) throw new Error('functions/index.ts registers no queue function');
    const reconstruct = reconstructInterpreter({
      definitions: loadDefinitions(),
      bucket,
      queueUrl,
      cwd: REPOSITORY,
      log: log.child({ component: 'workflow' }),
    });
    const api = await startLocalApi(
      {
        workflows: { reconstruct: (argument) => reconstruct.run(argument) },
        bucket,
        log: log.child({ component: 'api' }),
      },
      Number(values['api-port']),
    );
    stops.push(() => api.close());

    // What every function process gets: the local services, and the names the ingress config reads.
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      METADATA_SERVER_DETECTION: 'none',
      REDIS_URL: redis.url,
      GOOGLE_CLOUD_PROJECT: LOCAL_PROJECT,
      WORKFLOW_LOCATION: LOCAL_REGION,
      WORKFLOW_NAME: 'reconstruct',
      WORKFLOWS_EMULATOR_HOST: new URL(api.url).host,
      OUTPUT_PREFIX: `gs://${values.bucket}/requests/`,
      UPLOADS_PREFIX: 'uploads/',
      AUTH_MODE: 'local',
      ...(firestore ? { FIRESTORE_EMULATOR_HOST: firestore.host } : {}),
    };
    // The `functions-framework` command's script, beside the package's main module (not an exported path).
    const frameworkMain = join(
      dirname(createRequire(import.meta.url).resolve('@google-cloud/functions-framework')),
      'main.js',
    );
    for (const { target } of targets) {
      const child = spawn(
        process.execPath,
        [frameworkMain, `--target=${target}`, `--source=${REPOSITORY}`, `--port=${ports.get(target)}`],
        { cwd: REPOSITORY, env, stdio: ['ignore', 'inherit', 'inherit'] },
      );
      child.once('exit', (code) => {
        if (!stopping) {
          log.error('a function process stopped; stopping the stack', { target, code });
          void stop(1);
        }
      });
      children.push(child);
    }
    for (const [target, port] of ports) {
      for (let i = 0; !(await listening(port)); i++) {
        if (i > 300) throw new Error(`function ${target} did not listen on ${port}`);
        await sleep(100);
      }
    }

    const urls = {
      api: api.url,
      redis: redis.url,
      firestore: firestore ? firestore.host : null,
      bucket: `gs://${values.bucket} = ${resolve(root, values.bucket)}`,
      functions: Object.fromEntries(targets.map(({ target }) => [target, url(target)])),
    };
    log.info('local stack ready', { urls });
  } catch (error) {
    log.error('local stack failed to start', { error: (error as Error).message });
    await stop(1);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
