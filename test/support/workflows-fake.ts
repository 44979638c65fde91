/**
 * A local Workflows Executions API (v1 REST, the wire protocol the ExecutionsClient's REST
 * transport speaks): create, get, list (with `filter`) and cancel executions, refusing an argument
 * over the documented size limit with 400 INVALID_ARGUMENT as Workflows does, and a cancel of an
 * execution that has ended. Tests end executions, make creates fail, lose or delay their answers,
 * and read what was started; it also records the most executions ever ACTIVE at once.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { ARGUMENT_LIMIT_BYTES } from '../../functions/dispatch/argument.js';
import { executionFilter } from '../../local/workflows/list-filter.js';

/** Enum numbers of google.cloud.workflows.executions.v1.Execution.State. */
const STATE_NUMBERS: Record<string, number> = { ACTIVE: 1, SUCCEEDED: 2, FAILED: 3, CANCELLED: 4 };

export interface FakeExecution {
  name: string;
  argument: Record<string, unknown>;
  labels: Record<string, string>;
  state: 'ACTIVE' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
  startTime: string;
  endTime?: string;
  result?: string;
  error?: { payload: string; context: string };
}

export interface WorkflowsFake {
  host: string;
  executions: FakeExecution[];
  active(): FakeExecution[];
  maxActive(): number;
  /** The next `count` create calls answer 503 UNAVAILABLE, or the given error (e.g. 400 INVALID_ARGUMENT). */
  failCreates(count: number, error?: { code: number; status: string }): void;
  /** The next `count` create calls create their execution, then lose the answer (the connection drops). */
  loseCreateAnswers(count: number): void;
  /** The next create runs `hook` after its execution exists and before it answers (a slow answer). */
  beforeNextCreateAnswer(hook: (execution: FakeExecution) => Promise<void>): void;
  /** Create calls made, successful or not. */
  createCalls(): number;
  end(
    name: string,
    outcome: { state: 'SUCCEEDED'; result: unknown } | { state: 'FAILED' | 'CANCELLED'; error: string },
  ): void;
  stop(): Promise<void>;
}

const EXECUTIONS = /^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/workflows\/[^/]+)\/executions$/;
const EXECUTION = /^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/workflows\/[^/]+\/executions\/[^/:]+)(:cancel)?$/;

function googleError(res: ServerResponse, code: number, status: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { code, message, status } }));
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
}

export async function startWorkflowsFake(): Promise<WorkflowsFake> {
  const executions: FakeExecution[] = [];
  let failing = 0;
  let failure = { code: 503, status: 'UNAVAILABLE' };
  let losing = 0;
  let creates = 0;
  let beforeAnswer: ((execution: FakeExecution) => Promise<void>) | undefined;
  let maxActive = 0;
  const active = () => executions.filter((execution) => execution.state === 'ACTIVE');

  const wire = (execution: FakeExecution, numericEnums: boolean) => ({
    ...execution,
    argument: JSON.stringify(execution.argument),
    state: numericEnums ? STATE_NUMBERS[execution.state] : execution.state,
  });

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const numericEnums = url.searchParams.get('$alt') === 'json;enum-encoding=int';
      const create = EXECUTIONS.exec(url.pathname);
      const get = EXECUTION.exec(url.pathname);
      if (req.method === 'POST' && create) {
        creates++;
        const body = await readJson(req);
        if (failing > 0) {
          failing--;
          return googleError(res, failure.code, failure.status, `create refused (${failure.status})`);
        }
        if (typeof body.argument !== 'string') return googleError(res, 400, 'INVALID_ARGUMENT', 'argument required');
        const size = Buffer.byteLength(body.argument, 'utf8');
        if (size > ARGUMENT_LIMIT_BYTES) {
          return googleError(res, 400, 'INVALID_ARGUMENT', `argument is ${size} bytes; the limit is 32KB`);
        }
        const execution: FakeExecution = {
          name: `${create[1]}/executions/${randomUUID()}`,
          argument: JSON.parse(body.argument) as Record<string, unknown>,
          labels: { ...(body.labels as Record<string, string> | undefined) },
          state: 'ACTIVE',
          startTime: new Date().toISOString(),
        };
        executions.push(execution);
        maxActive = Math.max(maxActive, active().length);
        if (losing > 0) {
          losing--;
          return res.socket?.destroy();
        }
        const hook = beforeAnswer;
        beforeAnswer = undefined;
        await hook?.(execution);
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(wire(execution, numericEnums)));
      }
      if (req.method === 'GET' && create) {
        let matches;
        try {
          matches = executionFilter(url.searchParams.get('filter') ?? '');
        } catch (error) {
          return googleError(res, 400, 'INVALID_ARGUMENT', (error as Error).message);
        }
        // Newest first, as the API orders them.
        const found = executions.filter(
          (execution) => execution.name.startsWith(`${create[1]}/`) && matches(execution),
        );
        const pageSize = Number(url.searchParams.get('pageSize') ?? 100) || 100;
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(
          JSON.stringify({
            executions: found
              .reverse()
              .slice(0, pageSize)
              .map((execution) => wire(execution, numericEnums)),
          }),
        );
      }
      if (get && req.method === (get[2] ? 'POST' : 'GET')) {
        const execution = executions.find((candidate) => candidate.name === get[1]);
        if (!execution) return googleError(res, 404, 'NOT_FOUND', `Resource '${get[1]}' was not found`);
        if (get[2]) {
          // Cancel answers the execution, now CANCELLED; one that has ended cannot be cancelled.
          if (execution.state !== 'ACTIVE') {
            return googleError(res, 400, 'FAILED_PRECONDITION', `execution is ${execution.state}, not ACTIVE`);
          }
          execution.state = 'CANCELLED';
          execution.endTime = new Date().toISOString();
          execution.error = { payload: 'execution cancelled', context: 'fake' };
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(wire(execution, numericEnums)));
      }
      googleError(res, 404, 'NOT_FOUND', `no route ${req.method} ${url.pathname}`);
    })().catch((error: Error) => googleError(res, 500, 'INTERNAL', error.message));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('fake has no address');

  return {
    host: `127.0.0.1:${address.port}`,
    executions,
    active,
    maxActive: () => maxActive,
    failCreates(count, error = { code: 503, status: 'UNAVAILABLE' }) {
      failing = count;
      failure = error;
    },
    loseCreateAnswers(count) {
      losing = count;
    },
    beforeNextCreateAnswer(hook) {
      beforeAnswer = hook;
    },
    createCalls: () => creates,
    end(name, outcome) {
      const execution = executions.find((candidate) => candidate.name === name);
      if (!execution) throw new Error(`no execution ${name}`);
      execution.state = outcome.state;
      execution.endTime = new Date().toISOString();
      if (outcome.state === 'SUCCEEDED') execution.result = JSON.stringify(outcome.result);
      else execution.error = { payload: outcome.error, context: 'fake' };
    },
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
