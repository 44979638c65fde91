/**
 * `npm run local` — the whole backend on one machine, no cloud account: Redis and the Firestore emulator
 * on free loopback ports, every function target that functions/index.ts registers (served by the
 * Functions Framework in this process, each on its own port), and the local API
 * (Workflows Executions backed by the interpreter running workflows/reconstruct.yaml with the jobs
 * launcher; media uploads into the local bucket). Prints the URLs; Ctrl-C stops everything it started.
 */
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createLogger, type Logger } from '../lib/log.js';
import { freePort } from './services/ports.js';
import { startFirestore } from './services/firestore-emulator.js';
import { serveFunctions } from './services/functions.js';
import { startRedis, type RedisServer } from './services/redis-server.js';
import { writeSigningKey } from './services/signing-key.js';
import { startLocalApi } from './api.js';
import { LocalBucket } from './bucket.js';
import { createPrivateKey } from 'node:crypto';
import { loadDefinitions, workflowWorstCaseSeconds, type JobDefinitions } from './jobs/definitions.js';
import { LOCAL_PROJECT, LOCAL_REGION, reconstructInterpreter, reconstructLauncher } from './reconstruct-workflow.js';

const REPOSITORY = fileURLToPath(new URL('../../', import.meta.url));
const FUNCTIONS_ENTRY = resolve(REPOSITORY, 'dist/functions/index.js');

/** Function targets the entry point registers, read from its compiled source (no config needed to list them). */
export function functionTargets(source: string): Array<{ target: string; kind: 'http' | 'cloudEvent' }> {
  return [...source.matchAll(/functions\.(http|cloudEvent)\(\s*['"]([A-Za-z0-9_]+)['"]/g)].map((match) => ({
    kind: match[1] as 'http' | 'cloudEvent',
    target: match[2]!,
  }));
}

export interface StackOptions {
  /** Folder holding the local bucket's files. */
  data: string;
  bucket: string;
  /** 0: a free port. */
  apiPort: number;
  log: Logger;
  /** The stage jobs (default jobs/definitions.json; tests swap the commands). */
  definitions?: JobDefinitions;
  /** More configuration for the functions (tests: AUTO_DISPATCH, WEBHOOK_SECRET). */
  env?: Record<string, string>;
}

export interface Stack {
  urls: {
    api: string;
    redis: string;
    firestore: string;
    bucket: string;
    functions: Record<string, string | undefined>;
  };
  bucket: LocalBucket;
  /** The stack's redis-server: a drill stops it and starts it empty, as a failover that lost its data would. */
  redis: Pick<RedisServer, 'stop' | 'restart'>;
  /** Stops everything started, last first. */
  stop: () => Promise<void>;
}

/** Starts the whole stack; on a failure part-way, stops what it started and rethrows. */
export async function startStack(options: StackOptions): Promise<Stack> {
  const { log } = options;
  const stops: Array<() => Promise<void> | void> = [];
  const stop = async (): Promise<void> => {
    for (const stopOne of stops.splice(0).reverse()) await stopOne();
  };
  try {
    const root = resolve(options.data);
    await mkdir(root, { recursive: true });
    const redis = await startRedis();
    stops.push(() => redis.stop());
    const firestore = await startFirestore();
    stops.push(() => firestore.stop());

    // The status function signs output URLs; with no cloud credentials here, a key made on the spot.
    const signingKey = writeSigningKey();
    stops.push(() => signingKey.remove());
    const targets = functionTargets(readFileSync(FUNCTIONS_ENTRY, 'utf8'));
    const apiPort = options.apiPort || (await freePort());
    const definitions = options.definitions ?? loadDefinitions();
    // The status URL goes into the functions' configuration (and the upload status objects) before they serve.
    const statusPort = await freePort();
    // What the functions read: the local services, and the names functions/config/service.ts reads.
    const served = await serveFunctions(
      targets.map(({ target }) => target),
      {
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'INFO',
        REDIS_URL: redis.url,
        FIRESTORE_EMULATOR_HOST: firestore.host,
        GOOGLE_CLOUD_PROJECT: LOCAL_PROJECT,
        WORKFLOW_LOCATION: LOCAL_REGION,
        WORKFLOW_NAME: 'reconstruct',
        WORKFLOWS_EMULATOR_HOST: `127.0.0.1:${apiPort}`,
        RUN_EMULATOR_HOST: `127.0.0.1:${apiPort}`,
        OUTPUT_PREFIX: `gs://${options.bucket}/requests/`,
        UPLOADS_PREFIX: 'uploads/',
        AUTH_MODE: 'local',
        SIGNING_KEY_FILE: signingKey.file,
        // As deployed (terraform/functions.tf): the lease outlasts the workflow's worst case, and
        // framework errors carry no stack traces.
        DISPATCH_LEASE_SECONDS: String(workflowWorstCaseSeconds(definitions)),
        NODE_ENV: 'production',
        STATUS_URL: `http://127.0.0.1:${statusPort}/status`,
        // Status objects are written, and signed URLs point, to the local API's storage routes.
        STORAGE_EMULATOR_HOST: `http://127.0.0.1:${apiPort}`,
        ...options.env,
      },
      { status: statusPort },
    );
    stops.push(() => served.close());
    const url = (target: string): string | undefined =>
      targets.some((served) => served.target === target) ? served.url(target) : undefined;

    const bucket = new LocalBucket({
      root,
      uploadsPrefix: 'uploads/',
      eventUrl: url('onUpload'),
      log: log.child({ component: 'bucket' }),
    });
    const queueUrl = url('queue');
    if (!queueUrl) throw new Error('functions/index.ts registers no queue function');
    const parts = {
      definitions,
      bucket,
      queueUrl,
      cwd: REPOSITORY,
      log: log.child({ component: 'workflow' }),
    };
    const launcher = reconstructLauncher(parts);
    const reconstruct = reconstructInterpreter({ ...parts, launcher });
    const api = await startLocalApi(
      {
        workflows: { reconstruct: (argument, { signal }) => reconstruct.run(argument, signal) },
        jobs: launcher,
        bucket,
        log: log.child({ component: 'api' }),
        signingKey: createPrivateKey(
          (JSON.parse(readFileSync(signingKey.file, 'utf8')) as { private_key: string }).private_key,
        ),
      },
      apiPort,
    );
    stops.push(() => api.close());

    const urls = {
      api: api.url,
      redis: redis.url,
      firestore: firestore.host,
      bucket: `gs://${options.bucket} = ${resolve(root, options.bucket)}`,
      functions: Object.fromEntries(targets.map(({ target }) => [target, url(target)])),
    };
    return { urls, bucket, redis, stop };
  } catch (error) {
    await stop();
    throw error;
  }
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
  let stack: Stack | undefined;
  let stopping = false;
  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await stack?.stop();
    log.info('local stack stopped');
    process.exit(code);
  };
  process.once('SIGINT', () => void stop(0));
  process.once('SIGTERM', () => void stop(0));

  try {
    stack = await startStack({ data: values.data, bucket: values.bucket, apiPort: Number(values['api-port']), log });
    log.info('local stack ready', { urls: stack.urls });
  } catch (error) {
    log.error('local stack failed to start', { error: (error as Error).message });
    await stop(1);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
