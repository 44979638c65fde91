/** HTTP routes of the `queue` function: thin translation between HTTP and QueueService. */
import type { Request, Response } from '@google-cloud/functions-framework';
import { Ajv } from 'ajv';
import type { Logger } from '../../lib/log.js';
import { jsonBody } from '../http/body.js';
import { HttpError } from '../http/errors.js';
import { httpHandler } from '../http/handler.js';
import { idempotencyKey, keyedRequestId } from '../http/idempotency.js';
import { refuseOversizedArgument } from '../request-api/argument-limit.js';
import { assertStorable } from '../records/firestore-safe.js';
import type { Lifecycle } from '../records/lifecycle.js';
import { newRecord } from '../records/request-record.js';
import { enqueueSchema, nextQuerySchema, updateSchema } from './schemas.js';
import type { QueueService } from './service.js';

const ajv = new Ajv({ allErrors: false });
const validateEnqueue = ajv.compile(enqueueSchema);
const validateUpdate = ajv.compile(updateSchema);
const validateNextQuery = new Ajv({ coerceTypes: true }).compile(nextQuerySchema);

const REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function requestIdFrom(path: string): string {
  const id = decodeURIComponent(path.slice('/status/'.length));
  if (!REQUEST_ID.test(id)) throw new HttpError(400, 'INVALID_REQUEST_ID', 'request id is malformed');
  return id;
}

function nextQuery(req: Request): { lease_seconds?: number } {
  const query = { ...(req.query as Record<string, unknown>) };
  if (!validateNextQuery(query)) {
    throw new HttpError(400, 'INVALID_QUERY', `query ${validateNextQuery.errors?.[0]?.message ?? 'is invalid'}`);
  }
  return query;
}

type Route = (req: Request, res: Response) => Promise<void>;

/** Status changes go through `lifecycle` (the durable record first); reads and takes go to the queue. */
export function queueRoutes(
  queue: QueueService,
  lifecycle: Lifecycle,
  log: Logger,
  settings: { outputPrefix: string },
): (req: Request, res: Response) => Promise<void> {
  const routes: Array<{ method: string; match: (path: string) => boolean; run: Route }> = [
    {
      method: 'POST',
      match: (path) => path === '/enqueue',
      run: async (req, res) => {
        const body = jsonBody(req, validateEnqueue);
        assertStorable(body.params, 'params');
        const key = idempotencyKey(req);
        const record = newRecord({
          ...body,
          owner: 'queue-api',
          origin: 'queue',
          ...(key === undefined ? {} : { request_id: keyedRequestId('enqueue', key) }),
        });
        refuseOversizedArgument(record, settings.outputPrefix);
        // A repeated key answers the first request (whatever this body says), as `trigger` does.
        const { created, record: current, position } = await lifecycle.admit(record);
        log.info(created ? 'request queued' : 'repeated enqueue answered', {
          request_id: current.request_id,
          priority: current.priority,
          session_id: current.session_id,
        });
        res.status(created ? 201 : 200).json({
          request_id: current.request_id,
          status: current.status,
          position,
          duplicate: !created,
        });
      },
    },
    {
      method: 'GET',
      match: (path) => path.startsWith('/status/'),
      run: async (req, res) => {
        const request = await queue.get(requestIdFrom(req.path));
        if (!request) throw new HttpError(404, 'NOT_FOUND', 'no such request');
        res.status(200).json(request);
      },
    },
    {
      method: 'PUT',
      match: (path) => path.startsWith('/status/'),
      run: async (req, res) => {
        const requestId = requestIdFrom(req.path);
        const body = jsonBody(req, validateUpdate);
        assertStorable(body.outputs, 'outputs');
        assertStorable(body.error, 'error');
        const result = await lifecycle.update(requestId, body);
        if (result.kind === 'not_found') throw new HttpError(404, 'NOT_FOUND', 'no such request');
        if (result.kind !== 'ok') {
          const [code, message] =
            result.kind === 'illegal_transition'
              ? ['ILLEGAL_TRANSITION', `cannot go from ${result.current} to ${body.status}`]
              : ['LEASE_LOST', "the lease given is not the request's current lease"];
          throw new HttpError(409, code, message, {}, { current_status: result.current });
        }
        log.info('request updated', { request_id: requestId, status: body.status, stage: body.stage });
        const { record } = result;
        res.status(200).json(
          result.queued ?? {
            request_id: requestId,
            status: record.status,
            stage: record.stage,
            progress: record.progress,
            attempts: record.attempts,
            error: record.error,
            outputs: record.outputs,
          },
        );
      },
    },
    {
      method: 'GET',
      match: (path) => path === '/next',
      run: async (req, res) => {
        const { lease_seconds } = nextQuery(req);
        const taken = await lifecycle.take(lease_seconds);
        if (!taken) {
          res.status(204).end();
          return;
        }
        log.info('request leased', { request_id: taken.request.request_id, attempts: taken.request.attempts });
        res.status(200).json(taken.request);
      },
    },
    {
      method: 'GET',
      match: (path) => path === '/queue',
      run: async (_req, res) => {
        res.status(200).json(await queue.stats());
      },
    },
  ];

  return httpHandler(log, async (req, res) => {
    const path = req.path.replace(/\/+$/, '') || '/';
    const candidates = routes.filter((route) => route.match(path));
    const route = candidates.find((candidate) => candidate.method === req.method);
    if (!route) {
      if (candidates.length === 0) throw new HttpError(404, 'UNKNOWN_ROUTE', `no route ${req.method} ${path}`);
      const allowed = candidates.map((candidate) => candidate.method).join(', ');
      throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`, { Allow: allowed });
    }
    await route.run(req, res);
  });
}
