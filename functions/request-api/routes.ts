/**
 * The request API's HTTP functions: `trigger` (POST /trigger-reconstruction), `preprocessVideo`
 * (POST /preprocess-video) and `status` (GET /status?callback_token=…).
 */
import type { Request, Response } from '@google-cloud/functions-framework';
import { Ajv } from 'ajv';
import type { Logger } from '../../lib/log.js';
import { completedResults } from '../../lib/results.js';
import { jsonBody } from '../http/body.js';
import { HttpError } from '../http/errors.js';
import { httpHandler } from '../http/handler.js';
import { idempotencyKey } from '../http/idempotency.js';
import { assertStorable } from '../records/firestore-safe.js';
import type { Lifecycle } from '../records/lifecycle.js';
import { newRecord, type Origin, type RequestRecord } from '../records/request-record.js';
import type { RequestStore } from '../records/store.js';
import type { SignUrl } from '../storage/signed-urls.js';
import { checkWebhookUrl, WebhookRefused, type WebhookPolicy } from '../webhooks/ssrf.js';
import { refuseOversizedArgument } from './argument-limit.js';
import { dedupKey } from './dedup.js';
import { rateLimited, type AdmissionGate } from './gate.js';
import type { IdentifyCaller } from './identity.js';
import { checkInput, type InputRules } from './inputs.js';
import { statusQuerySchema, triggerSchema, type TriggerBody } from './schemas.js';
import { viewerLink } from './viewer-link.js';
import { hashToken, newCallbackToken, TOKEN_PATTERN, tokenMatches } from './tokens.js';
import { randomUUID } from 'node:crypto';

const ajv = new Ajv({ allErrors: false });
const validateTrigger = ajv.compile(triggerSchema);
const validateStatusQuery = ajv.compile(statusQuerySchema);

export interface AdmissionDeps {
  identify: IdentifyCaller;
  /** Deduplication, then the rate limit (so identical retries are answered, not refused). */
  gate: AdmissionGate;
  lifecycle: Lifecycle;
  log: Logger;
  statusUrl: string;
  inputs: InputRules;
  webhooks: { enabled: boolean; policy: WebhookPolicy };
  /** OUTPUT_PREFIX: part of the workflow argument whose size admission checks. */
  outputPrefix: string;
}

function only(req: Request, method: string, paths: string[]): void {
  const path = req.path.replace(/\/+$/, '') || '/';
  if (!paths.includes(path)) throw new HttpError(404, 'UNKNOWN_ROUTE', `no route ${req.method} ${path}`);
  if (req.method !== method) {
    throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`, { Allow: method });
  }
}

async function checkBody(body: TriggerBody, caller: string, deps: AdmissionDeps): Promise<void> {
  if (body.input.uri.split('/').some((segment) => segment === '..' || segment === '.')) {
    throw new HttpError(400, 'INVALID_BODY', 'body.input.uri must not contain "." or ".." path segments');
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(body.input.uri)) {
    throw new HttpError(400, 'INVALID_BODY', 'body.input.uri must not contain control characters');
  }
  checkInput(body.input.uri, caller, deps.inputs);
  if (body.webhook_url === undefined) return;
  if (!deps.webhooks.enabled)
    throw new HttpError(400, 'WEBHOOKS_DISABLED', 'webhooks are not configured on this service');
  try {
    await checkWebhookUrl(body.webhook_url, deps.webhooks.policy);
  } catch (error) {
    if (error instanceof WebhookRefused) {
      const code = error.code === 'INVALID_WEBHOOK_URL' ? 'INVALID_BODY' : error.code;
      throw new HttpError(400, code, `body.${error.message}`);
    }
    throw error;
  }
}

/** `trigger` and `preprocessVideo`: authenticate, validate, dedup, rate-limit, record, queue. */
export function admissionRoute(deps: AdmissionDeps, origin: Extract<Origin, 'trigger' | 'preprocess'>, path: string) {
  return httpHandler(deps.log, async (req: Request, res: Response) => {
    only(req, 'POST', ['/', path]);
    const caller = await deps.identify(req);
    const body = jsonBody(req, validateTrigger);
    await checkBody(body, caller, deps);
    assertStorable(body.params, 'params');
    // Preprocessing is a reconstruction that stops after sparse reconstruction.
    const params = origin === 'preprocess' ? { ...body.params, stop_after: 'sfm' } : (body.params ?? {});
    refuseOversizedArgument({ input: body.input, params }, deps.outputPrefix);
    const key = idempotencyKey(req);

    const gate = await deps.gate.pass(caller, dedupKey(caller, origin, key, body), {
      request_id: randomUUID(),
      callback_token: newCallbackToken(),
    });
    if (gate.kind === 'limited') throw rateLimited(gate.retryAfterSeconds);
    const { answer } = gate;
    const first = gate.kind === 'first';
    // A repeat re-runs admit: if the first call died between claiming and recording, this completes it.
    const { record } = await deps.lifecycle.admit(
      newRecord({
        request_id: answer.request_id,
        owner: caller,
        origin,
        session_id: body.session_id,
        input: body.input,
        priority: body.priority,
        params,
        webhook_url: body.webhook_url,
        token_hash: hashToken(answer.callback_token),
      }),
    );
    deps.log.info(first ? 'request admitted' : 'duplicate answered', { request_id: record.request_id, origin });
    res.status(202).json({
      request_id: record.request_id,
      ...(origin === 'preprocess' ? { job_id: record.request_id } : {}),
      status: record.status,
      callback_token: answer.callback_token,
      status_url: `${deps.statusUrl}?callback_token=${answer.callback_token}`,
      duplicate: !first,
    });
  });
}

function timings(record: RequestRecord) {
  return Object.entries(record.stages)
    .sort(([, a], [, b]) => a.started_at.localeCompare(b.started_at))
    .map(([name, timing]) => ({
      name,
      ...timing,
      seconds: timing.finished_at ? (Date.parse(timing.finished_at) - Date.parse(timing.started_at)) / 1000 : undefined,
    }));
}

async function signedOutputs(outputs: Record<string, unknown>, sign: SignUrl): Promise<Record<string, unknown>> {
  const entries = await Promise.all(
    Object.entries(outputs).map(async ([name, value]) =>
      typeof value === 'string' && value.startsWith('gs://')
        ? [name, { uri: value, url: await sign(value) }]
        : [name, value],
    ),
  );
  return Object.fromEntries(entries) as Record<string, unknown>;
}

/** `status`: the request behind a callback token, with signed URLs of its outputs once done. */
export function statusRoute(deps: { store: RequestStore; sign: SignUrl; log: Logger }) {
  return httpHandler(deps.log, async (req: Request, res: Response) => {
    only(req, 'GET', ['/', '/status']);
    const query = { ...(req.query as Record<string, unknown>) };
    if (!validateStatusQuery(query)) {
      throw new HttpError(400, 'INVALID_QUERY', `query ${validateStatusQuery.errors?.[0]?.message ?? 'is invalid'}`);
    }
    if (!TOKEN_PATTERN.test(query.callback_token))
      throw new HttpError(400, 'INVALID_TOKEN', 'callback_token is malformed');
    const record = await deps.store.findByTokenHash(hashToken(query.callback_token));
    if (!record || !tokenMatches(query.callback_token, record.token_hash)) {
      throw new HttpError(404, 'NOT_FOUND', 'no request for this callback token');
    }
    res.status(200).json({
      request_id: record.request_id,
      status: record.status,
      stage: record.stage,
      progress: record.progress,
      attempts: record.attempts,
      created_at: record.created_at,
      updated_at: record.updated_at,
      started_at: record.started_at,
      finished_at: record.finished_at,
      stages: timings(record),
      error: record.error,
      outputs:
        record.status === 'COMPLETED' && record.outputs ? await signedOutputs(record.outputs, deps.sign) : undefined,
      viewer_url:
        record.status === 'COMPLETED' && record.outputs ? await viewerLink(record.outputs, deps.sign) : undefined,
      // The result files by name, each {uri, url} with a signed URL (what `splatflow download` fetches).
      files:
        record.status === 'COMPLETED' ? await signedOutputs(completedResults(record.outputs), deps.sign) : undefined,
    });
  });
}
