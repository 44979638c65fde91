/**
 * Entry point of every Cloud Function (package.json `main`). Configuration is read and validated
 * here, once, so a bad deployment stops at start-up with the variable named.
 */
import * as functions from '@google-cloud/functions-framework';
import { createLogger } from '../lib/log.js';
import { Dispatcher } from './dispatch/dispatcher.js';
import { reconcile } from './dispatch/reconciler.js';
import { workflowRunner } from './dispatch/workflows.js';
import { jobExecutions } from './jobs/executions.js';
import { captureBodyErrors } from './http/body.js';
import { HttpError } from './http/errors.js';
import { answerFrameworkErrors } from './http/framework-errors.js';
import { httpHandler } from './http/handler.js';
import { loadIngressConfig, webhookAllowList } from './config/service.js';
import { AdmissionGate } from './request-api/gate.js';
import { identifyCaller } from './request-api/identity.js';
import { admissionRoute, statusRoute } from './request-api/routes.js';
import { uploadHandler } from './request-api/upload-handler.js';
import { uploadsRoute } from './request-api/uploads-route.js';
import { loadQueueConfig } from './config/queue.js';
import { queueRoutes } from './queue/routes.js';
import { queueScripts } from './queue/scripts.js';
import { QueueService } from './queue/service.js';
import { Lifecycle } from './records/lifecycle.js';
import type { RequestRecord } from './records/request-record.js';
import { openFirestore, RequestStore } from './records/store.js';
import { connectRedis } from './redis/connection.js';
import { discoverRedis } from './redis/discovery.js';
import { Storage } from '@google-cloud/storage';
import { parseLocations } from '../lib/locations.js';
import { uploadUrlSigner, urlSigner } from './storage/signed-urls.js';
import { StatusObjects } from './uploads/status-object.js';
import { checkWebhookUrl, systemLookup, WebhookRefused, type WebhookPolicy } from './webhooks/ssrf.js';
import { deliverWebhook } from './webhooks/webhook.js';

captureBodyErrors();

const config = loadQueueConfig();
const ingress = loadIngressConfig();
const log = createLogger({ level: config.LOG_LEVEL });
answerFrameworkErrors(log);
// REDIS_URL wins; otherwise the Memorystore instance is looked up once, at start-up.
const endpoint =
  config.REDIS_URL !== undefined
    ? { url: config.REDIS_URL }
    : await discoverRedis(config.REDIS_INSTANCE!, config.CLOUD_REDIS_EMULATOR_HOST);
const redis = connectRedis(
  {
    url: endpoint.url,
    password: config.REDIS_PASSWORD ?? endpoint.password,
    tlsCa: config.REDIS_TLS_CA ?? endpoint.tlsCa,
    connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS,
  },
  log,
);
const scripts = queueScripts();
const queue = new QueueService(redis, scripts, {
  keyPrefix: config.REDIS_KEY_PREFIX,
  leaseSeconds: config.QUEUE_LEASE_SECONDS,
  maxAttempts: config.QUEUE_MAX_ATTEMPTS,
  retentionSeconds: config.QUEUE_RETENTION_SECONDS,
});
const firestore = openFirestore(ingress.GOOGLE_CLOUD_PROJECT);
// Every record write updates its upload's status object (uploads only), from inside the store.
const statusObjects = ingress.UPLOAD_STATUS_OBJECTS
  ? new StatusObjects(
      new Storage({ projectId: ingress.GOOGLE_CLOUD_PROJECT }),
      { prefix: ingress.UPLOAD_STATUS_PREFIX, statusUrl: ingress.STATUS_URL, outputPrefix: ingress.OUTPUT_PREFIX },
      log.child({ component: 'status-objects' }),
    )
  : undefined;
const store = new RequestStore(firestore, statusObjects);
const runner = workflowRunner({
  projectId: ingress.GOOGLE_CLOUD_PROJECT,
  location: ingress.WORKFLOW_LOCATION,
  workflow: ingress.WORKFLOW_NAME,
  emulatorHost: ingress.WORKFLOWS_EMULATOR_HOST,
});
const inputLocations = parseLocations(ingress.INPUT_LOCATIONS);
const webhookPolicy: WebhookPolicy = {
  lookup: systemLookup,
  allowHttp: ingress.WEBHOOK_ALLOW_HTTP,
  allowList: webhookAllowList(ingress),
};
const signing = {
  projectId: ingress.GOOGLE_CLOUD_PROJECT,
  keyFile: ingress.SIGNING_KEY_FILE,
  ttlSeconds: ingress.SIGNED_URL_TTL_SECONDS,
};
const jobs = jobExecutions({ emulatorHost: ingress.RUN_EMULATOR_HOST });
/** Background work a function starts but does not wait for; tracked so shutdown can let it finish. */
const background = new Set<Promise<unknown>>();
function inBackground(what: string, work: () => Promise<unknown>): void {
  const running = work()
    .catch((error: unknown) => log.error(`${what} failed`, { error }))
    .finally(() => background.delete(running));
  background.add(running);
}

function notifyEnd(record: RequestRecord): void {
  const url = record.webhook_url;
  const secret = ingress.WEBHOOK_SECRET;
  if (!url || !secret) return;
  const payload = {
    request_id: record.request_id,
    status: record.status,
    stage: record.stage,
    finished_at: record.finished_at,
    error: record.error,
    outputs: record.outputs,
  };
  inBackground('webhook delivery', () =>
    deliverWebhook(url, payload, { secret, retries: ingress.WEBHOOK_RETRIES, policy: webhookPolicy }),
  );
}

/**
 * The workflow first, so it starts no further stage; then every job execution it recorded. One already
 * ended answers an error, logged and left: cancelling is best effort and never undoes the CANCELLED record.
 */
function stopCancelled(record: RequestRecord): void {
  const id = record.request_id;
  inBackground('cancellation', async () => {
    const stops = [
      ...(record.execution ? [{ what: 'workflow execution', stop: () => runner.cancel(record.execution!) }] : []),
      ...(record.job_executions ?? []).map((name) => ({ what: 'job execution', stop: () => jobs.cancel(name) })),
    ];
    for (const { what, stop } of stops) {
      await stop().then(
        () => log.info(`${what} cancelled`, { request_id: id }),
        (error: unknown) => log.warning(`${what} not cancelled`, { request_id: id, error: (error as Error).message }),
      );
    }
  });
}

const lifecycle = new Lifecycle(store, queue, log, {
  ended: notifyEnd,
  cancelled: stopCancelled,
  // Off where workers take requests from the queue API (GET /next) themselves.
  kick: () => {
    if (ingress.AUTO_DISPATCH) inBackground('dispatch', () => dispatcher.dispatch());
  },
});
const dispatcher = new Dispatcher(queue, store, lifecycle, runner, log, {
  maxConcurrent: ingress.MAX_CONCURRENT_RECONSTRUCTIONS,
  startLeaseSeconds: ingress.DISPATCH_START_LEASE_SECONDS,
  leaseSeconds: ingress.DISPATCH_LEASE_SECONDS,
  startRetries: ingress.DISPATCH_START_RETRIES,
  retryDelayMs: ingress.DISPATCH_RETRY_DELAY_MS,
  maxAttempts: config.QUEUE_MAX_ATTEMPTS,
  outputPrefix: ingress.OUTPUT_PREFIX,
});

const admission = {
  identify: identifyCaller({
    mode: ingress.AUTH_MODE,
    jwksUrl: ingress.AUTH_JWKS_URL,
    audience: ingress.AUTH_AUDIENCE,
    localHeader: ingress.AUTH_LOCAL_HEADER,
  }),
  gate: new AdmissionGate(redis, scripts, {
    keyPrefix: config.REDIS_KEY_PREFIX,
    limit: ingress.RATE_LIMIT_PER_MINUTE,
    windowMs: 60_000,
    dedupWindowSeconds: ingress.DEDUP_WINDOW_SECONDS,
  }),
  lifecycle,
  log,
  statusUrl: ingress.STATUS_URL,
  inputs: { mode: ingress.AUTH_MODE, locations: inputLocations },
  webhooks: { enabled: ingress.WEBHOOK_SECRET !== undefined, policy: webhookPolicy },
  outputPrefix: ingress.OUTPUT_PREFIX,
};

functions.http('queue', queueRoutes(queue, lifecycle, log, { outputPrefix: ingress.OUTPUT_PREFIX }));
functions.http('trigger', admissionRoute(admission, 'trigger', '/trigger-reconstruction'));
functions.http('preprocessVideo', admissionRoute(admission, 'preprocess', '/preprocess-video'));
functions.http(
  'status',
  statusRoute({
    store,
    log,
    sign: urlSigner(signing),
  }),
);
functions.http(
  'uploads',
  uploadsRoute({
    identify: admission.identify,
    gate: admission.gate,
    sign: uploadUrlSigner(signing),
    location: inputLocations[0],
    log,
  }),
);
functions.cloudEvent(
  'onUpload',
  uploadHandler({
    store,
    lifecycle,
    log,
    limits: {
      uploadsPrefix: ingress.UPLOADS_PREFIX,
      maxBytes: ingress.UPLOAD_MAX_BYTES,
      maxDurationSeconds: ingress.UPLOAD_MAX_DURATION_SECONDS,
    },
    statusObjects,
    // The trigger's webhook check, so one rule covers both ways a webhook arrives.
    checkWebhook: async (url) => {
      if (ingress.WEBHOOK_SECRET === undefined) return 'webhooks are not configured on this service';
      try {
        await checkWebhookUrl(url, webhookPolicy);
        return undefined;
      } catch (error) {
        if (error instanceof WebhookRefused) return error.message;
        throw error;
      }
    },
  }),
);

/** Scheduler-driven functions take POST (Cloud Scheduler) or GET (a person with curl). */
const scheduled = (run: () => Promise<unknown>) =>
  httpHandler(log, async (req, res) => {
    if (req.method !== 'POST' && req.method !== 'GET') {
      throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed`, { Allow: 'GET, POST' });
    }
    res.status(200).json(await run());
  });

/** Starts workflow executions for queued requests while capacity allows; for Cloud Scheduler and callers. */
functions.http(
  'dispatch',
  scheduled(() => dispatcher.dispatch()),
);

/** Re-queues QUEUED records missing from Redis and settles PROCESSING ones whose execution ended. */
functions.http(
  'reconcile',
  scheduled(() => reconcile({ store, queue, lifecycle, runner, log }, ingress.RECONCILE_BATCH)),
);

/** Returns expired leases to the queue (or fails them); for Cloud Scheduler, every minute. */
functions.http(
  'expireLeases',
  scheduled(async () => {
    const expired = await queue.expireLeases();
    await lifecycle.leasesExpired(expired);
    return { expired };
  }),
);

/** Lets background work finish, then closes connections (tests, and a host that wants a clean shutdown). */
export async function shutdown(): Promise<void> {
  while (background.size > 0) await Promise.allSettled([...background]);
  await Promise.all([redis.close(), firestore.terminate()]);
}
