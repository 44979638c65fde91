/**
 * The local stack's Google-shaped HTTP API, on one loopback port:
 * - Workflows Executions REST (v1): create, get, list (with `filter`) and cancel executions, backed by the
 *   local interpreter, so the real `ExecutionsClient` (REST fallback) works unchanged against it; an
 *   argument over Workflows' documented size limit is refused with 400 INVALID_ARGUMENT, as there;
 * - Cloud Run Admin REST (v2) for job executions: get and cancel, backed by the jobs launcher (cancel kills
 *   the stage's process), for the real `@google-cloud/run` client;
 * - Cloud Storage media upload (`POST /upload/storage/v1/b/{bucket}/o?uploadType=media&name=…`) into the
 *   local bucket, which emits the finalize CloudEvent for uploads, and the rest of the storage API the
 *   functions and the CLI use (local/storage-api.ts).
 * Errors have Google's JSON error shape `{error: {code, message, status}}`. Only loopback `Host`s are answered
 * (local/loopback-host.ts).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ARGUMENT_LIMIT_BYTES } from '../functions/dispatch/argument.js';
import type { Logger } from '../lib/log.js';
import type { KeyObject } from 'node:crypto';
import { PreconditionFailedError, TooLargeError, type LocalBucket } from './bucket.js';
import type { JobsLauncher } from './jobs/launcher.js';
import { refuseForeignHosts } from './loopback-host.js';
import { storageRoutes } from './storage-api.js';
import { WorkflowError } from './workflows/errors.js';
import { CancelledError } from './workflows/interpreter.js';
import { executionFilter } from './workflows/list-filter.js';

/** Runs one execution of a workflow with its (decoded) argument; stops when `signal` aborts. */
export type WorkflowRunner = (argument: unknown, execution: { name: string; signal: AbortSignal }) => Promise<unknown>;

export interface ApiOptions {
  /** Workflow id → runner (e.g. `reconstruct`). */
  workflows: Record<string, WorkflowRunner>;
  bucket?: LocalBucket;
  /** Job executions the workflows started (the Cloud Run Admin API's part). */
  jobs?: Pick<JobsLauncher, 'get' | 'cancel'>;
  log: Logger;
  /** Largest upload accepted, bytes. */
  maxBodyBytes?: number;
  /** The key signed URLs are checked against (the status function's signing key). */
  signingKey?: KeyObject;
}

export interface Execution {
  name: string;
  state: 'ACTIVE' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
  argument: string;
  labels: Record<string, string>;
  startTime: string;
  endTime?: string;
  duration?: string;
  result?: string;
  error?: { payload: string; context: string };
  workflowRevisionId: string;
  callLogLevel: string;
}

export interface LocalApi {
  url: string;
  /** Resolves when the execution ends (tests, the CLI). */
  settled(name: string): Promise<Execution>;
  close(): Promise<void>;
}

const WORKFLOW = /^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/workflows\/([^/]+))\/executions$/;
const EXECUTION = /^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/workflows\/[^/]+\/executions\/[^/:]+)(:cancel)?$/;
const JOB_EXECUTION = /^\/v2\/(projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/]+\/executions\/[^/:]+)(:cancel)?$/;
const UPLOAD = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/;
const STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  412: 'FAILED_PRECONDITION',
  413: 'OUT_OF_RANGE',
};

class ApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new ApiError(413, `request body over ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Execution labels: string keys and values (Workflows checks their spelling; here only the shape). */
function labelsOf(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw new ApiError(400, 'labels must map strings to strings');
  }
  return { ...(value as Record<string, string>) };
}

export async function startLocalApi(options: ApiOptions, port = 0): Promise<LocalApi & { server: Server }> {
  const executions = new Map<string, { execution: Execution; done: Promise<Execution>; abort: AbortController }>();
  const limit = options.maxBodyBytes ?? 2 * 1024 ** 3;
  const storage = options.bucket
    ? storageRoutes(options.bucket, { signingKey: options.signingKey, maxBodyBytes: limit })
    : undefined;

  const start = (parent: string, workflowId: string, body: Buffer): Execution => {
    const runner = options.workflows[workflowId];
    if (!runner) throw new ApiError(404, `Resource '${parent}' was not found`);
    let request: { argument?: unknown; labels?: unknown };
    try {
      request = body.length ? (JSON.parse(body.toString('utf8')) as typeof request) : {};
    } catch {
      throw new ApiError(400, 'the request body is not JSON');
    }
    const text = typeof request.argument === 'string' && request.argument !== '' ? request.argument : 'null';
    const size = Buffer.byteLength(text, 'utf8');
    if (size > ARGUMENT_LIMIT_BYTES) throw new ApiError(400, `argument is ${size} bytes; the limit is 32KB`);
    const labels = labelsOf(request.labels);
    let argument: unknown;
    try {
      argument = JSON.parse(text);
    } catch {
      throw new ApiError(400, 'execution argument is not valid JSON');
    }
    const started = new Date();
    const execution: Execution = {
      name: `${parent}/executions/${randomUUID()}`,
      state: 'ACTIVE',
      argument: text,
      labels,
      startTime: started.toISOString(),
      workflowRevisionId: '000001-local',
      callLogLevel: 'LOG_ERRORS_ONLY',
    };
    const log = options.log.child({ execution: execution.name });
    log.info('execution started', { workflow: workflowId });
    const abort = new AbortController();
    const done = runner(argument, { name: execution.name, signal: abort.signal })
      .then(
        (result) => ({ ...execution, state: 'SUCCEEDED' as const, result: JSON.stringify(result ?? null) }),
        (error: unknown) => {
          if (error instanceof CancelledError) return { ...execution, state: 'CANCELLED' as const };
          const payload =
            error instanceof WorkflowError ? error.value : { message: String((error as Error).message ?? error) };
          log.error('execution failed', { error: payload });
          return { ...execution, state: 'FAILED' as const, error: { payload: JSON.stringify(payload), context: '' } };
        },
      )
      .then((ended) => {
        const finished = {
          ...ended,
          endTime: new Date().toISOString(),
          duration: `${(Date.now() - started.getTime()) / 1000}s`,
        };
        entry.execution = finished;
        log.info('execution ended', { state: finished.state });
        return finished;
      });
    const entry = { execution, done, abort };
    executions.set(execution.name, entry);
    return execution;
  };

  /** A workflow's executions matching `filter`, newest first, as executions.list orders them. */
  const list = (parent: string, query: URLSearchParams): Execution[] => {
    let matches: ReturnType<typeof executionFilter>;
    try {
      matches = executionFilter(query.get('filter') ?? '');
    } catch (error) {
      throw new ApiError(400, (error as Error).message);
    }
    const pageSize = Number(query.get('pageSize') ?? 100) || 100;
    return [...executions.values()]
      .map((entry) => entry.execution)
      .filter((execution) => execution.name.startsWith(`${parent}/executions/`) && matches(execution))
      .reverse()
      .slice(0, pageSize);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const create = WORKFLOW.exec(url.pathname);
    if (create && req.method === 'GET') return send(res, 200, { executions: list(create[1]!, url.searchParams) });
    if (create) {
      if (req.method !== 'POST') throw new ApiError(405, `${req.method} is not allowed on ${url.pathname}`);
      return send(res, 200, start(create[1]!, create[2]!, await readBody(req, 1024 * 1024)));
    }
    const get = EXECUTION.exec(url.pathname);
    if (get) {
      const cancel = get[2] !== undefined;
      if (req.method !== (cancel ? 'POST' : 'GET'))
        throw new ApiError(405, `${req.method} is not allowed on ${url.pathname}`);
      const entry = executions.get(get[1]!);
      if (!entry) throw new ApiError(404, `Resource '${get[1]}' was not found`);
      if (!cancel) return send(res, 200, entry.execution);
      // Workflows refuses to cancel an execution that has ended.
      if (entry.execution.state !== 'ACTIVE')
        throw new ApiError(400, `execution ${get[1]} is ${entry.execution.state}, not ACTIVE`);
      entry.abort.abort();
      return send(res, 200, await entry.done);
    }
    const job = JOB_EXECUTION.exec(url.pathname);
    if (job && options.jobs) {
      const cancel = job[2] !== undefined;
      if (req.method !== (cancel ? 'POST' : 'GET'))
        throw new ApiError(405, `${req.method} is not allowed on ${url.pathname}`);
      const found = cancel ? await options.jobs.cancel(job[1]!) : options.jobs.get(job[1]!);
      if (!found) throw new ApiError(404, `Resource '${job[1]}' of kind 'EXECUTION' does not exist.`);
      // cancel answers its long-running operation; the execution has ended by then.
      return send(res, 200, cancel ? { name: `${job[1]}/operations/cancel`, done: false } : found);
    }
    if (await storage?.(req, res, url)) return;
    const upload = UPLOAD.exec(url.pathname);
    if (upload && options.bucket) {
      if (req.method !== 'POST') throw new ApiError(405, `${req.method} is not allowed on ${url.pathname}`);
      const name = url.searchParams.get('name');
      if (url.searchParams.get('uploadType') !== 'media' || !name) {
        throw new ApiError(400, 'only uploadType=media with a name is supported locally');
      }
      const contentType = req.headers['content-type'] ?? 'application/octet-stream';
      try {
        const precondition = url.searchParams.get('ifGenerationMatch');
        const object = await options.bucket.write(upload[1]!, name, req, {
          contentType,
          maxBytes: limit,
          ...(precondition === null ? {} : { ifGenerationMatch: precondition }),
        });
        return send(res, 200, object);
      } catch (error) {
        if (error instanceof TooLargeError) throw new ApiError(413, error.message);
        if (error instanceof PreconditionFailedError) throw new ApiError(412, error.message);
        throw new ApiError(400, (error as Error).message);
      }
    }
    throw new ApiError(404, `no route ${req.method} ${url.pathname}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const code = error instanceof ApiError ? error.code : 500;
      if (code === 500) options.log.error('local api error', { error });
      // Failed part-way through a body (the client went away): nothing more can be said on this response.
      if (res.headersSent) return void res.destroy();
      send(res, code, {
        error: {
          code,
          message: error instanceof ApiError ? error.message : 'internal error',
          status: STATUS[code] ?? 'INTERNAL',
        },
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  refuseForeignHosts(server);
  const address = server.address() as { port: number };
  return {
    server,
    url: `http://127.0.0.1:${address.port}`,
    settled: async (name) => {
      const entry = executions.get(name);
      if (!entry) throw new Error(`no execution ${name}`);
      return entry.done;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
