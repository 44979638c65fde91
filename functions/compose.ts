/**
 * The wiring of every function: configuration read and validated once (so a bad deployment stops at
 * start-up with the variable named), the stores, queue, workflow runner and lifecycle built from it, and
 * one handler per target. functions/index.ts registers them.
 */
import { Storage } from '@google-cloud/storage';
import { parseLocations } from '../lib/locations.js';
import { createLogger } from '../lib/log.js';
import { loadQueueConfig } from './config/queue.js';
import { loadServiceConfig, webhookAllowList } from './config/service.js';
import { Dispatcher } from './dispatch/dispatcher.js';
import { reconcile } from './dispatch/reconciler.js';
import { workflowRunner } from './dispatch/workflows.js';
import { answerFrameworkErrors } from './http/framework-errors.js';
import { scheduled } from './http/scheduled.js';
import { jobExecutions } from './jobs/executions.js';
import { queueRoutes } from './queue/routes.js';
import { QueueService } from './queue/service.js';
import { Lifecycle } from './records/lifecycle.js';
import type { RequestRecord } from './records/request-record.js';
import { openFirestore, RequestStore } from './records/store.js';
import { connectRedis } from './redis/connection.js';
import { discoverRedis } from './redis/discovery.js';
import { AdmissionGate } from './request-api/gate.js';
import { identifyCaller } from './request-api/identity.js';
import { admissionRoute, statusRoute } from './request-api/routes.js';
import { uploadHandler } from './request-api/upload-handler.js';
import { uploadsRoute } from './request-api/uploads-route.js';
import { uploadUrlSigner, urlSigner } from './storage/signed-urls.js';
import { StatusObjects } from './uploads/status-object.js';
import { systemLookup, webhookProblem, type WebhookPolicy } from './webhooks/ssrf.js';
import { deliverWebhook, endPayload } from './webhooks/webhook.js';

export async function composeFunctions(env: Record<string, string | undefined> = process.env) {
  const queueConfig = loadQueueConfig(env);
  const serviceConfig = loadServiceConfig(env);
  const log = createLogger({ level: queueConfig.LOG_LEVEL });
  answerFrameworkErrors(log);
  // REDIS_URL wins; otherwise the Memorystore instance is looked up once, at start-up.
  const endpoint =
    queueConfig.REDIS_URL !== undefined
      ? { url: queueConfig.REDIS_URL }
      : await discoverRedis(queueConfig.REDIS_INSTANCE!, queueConfig.CLOUD_REDIS_EMULATOR_HOST);
  const redis = connectRedis(
    {
      url: endpoint.url,
      password: queueConfig.REDIS_PASSWORD ?? endpoint.password,
      tlsCa: queueConfig.REDIS_TLS_CA ?? endpoint.tlsCa,
      connectTimeoutMs: queueConfig.REDIS_CONNECT_TIMEOUT_MS,
    },
    log,
  );
  const queue = new QueueService(redis, {
    keyPrefix: queueConfig.REDIS_KEY_PREFIX,
    leaseSeconds: queueConfig.QUEUE_LEASE_SECONDS,
    maxAttempts: queueConfig.QUEUE_MAX_ATTEMPTS,
    retentionSeconds: queueConfig.QUEUE_RETENTION_SECONDS,
  });
  const firestore = openFirestore(serviceConfig.GOOGLE_CLOUD_PROJECT);
  // Every record write updates its upload's status object (uploads only), from inside the store.
  const statusObjects = serviceConfig.UPLOAD_STATUS_OBJECTS
    ? new StatusObjects(
        new Storage({ projectId: serviceConfig.GOOGLE_CLOUD_PROJECT }),
        {
          prefix: serviceConfig.UPLOAD_STATUS_PREFIX,
          statusUrl: serviceConfig.STATUS_URL,
          outputPrefix: serviceConfig.OUTPUT_PREFIX,
        },
        log.child({ component: 'status-objects' }),
      )
    : undefined;
  const store = new RequestStore(firestore, statusObjects);
  const runner = workflowRunner({
    projectId: serviceConfig.GOOGLE_CLOUD_PROJECT,
    location: serviceConfig.WORKFLOW_LOCATION,
    workflow: serviceConfig.WORKFLOW_NAME,
    emulatorHost: serviceConfig.WORKFLOWS_EMULATOR_HOST,
  });
  const inputLocations = parseLocations(serviceConfig.INPUT_LOCATIONS);
  const webhookPolicy: WebhookPolicy = {
    lookup: systemLookup,
    allowHttp: serviceConfig.WEBHOOK_ALLOW_HTTP,
    allowList: webhookAllowList(serviceConfig),
  };
  const signing = {
    projectId: serviceConfig.GOOGLE_CLOUD_PROJECT,
    keyFile: serviceConfig.SIGNING_KEY_FILE,
    ttlSeconds: serviceConfig.SIGNED_URL_TTL_SECONDS,
  };
  const jobs = jobExecutions({ emulatorHost: serviceConfig.RUN_EMULATOR_HOST });
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
    const secret = serviceConfig.WEBHOOK_SECRET;
    if (!url || !secret) return;
    inBackground('webhook delivery', () =>
      deliverWebhook(url, endPayload(record), {
        secret,
        retries: serviceConfig.WEBHOOK_RETRIES,
        policy: webhookPolicy,
      }),
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
      if (serviceConfig.AUTO_DISPATCH) inBackground('dispatch', () => dispatcher.dispatch());
    },
  });
  const dispatcher = new Dispatcher(queue, store, lifecycle, runner, log, {
    maxConcurrent: serviceConfig.MAX_CONCURRENT_RECONSTRUCTIONS,
    startLeaseSeconds: serviceConfig.DISPATCH_START_LEASE_SECONDS,
    leaseSeconds: serviceConfig.DISPATCH_LEASE_SECONDS,
    startRetries: serviceConfig.DISPATCH_START_RETRIES,
    retryDelayMs: serviceConfig.DISPATCH_RETRY_DELAY_MS,
    maxAttempts: queueConfig.QUEUE_MAX_ATTEMPTS,
    outputPrefix: serviceConfig.OUTPUT_PREFIX,
  });

  const admission = {
    identify: identifyCaller({
      mode: serviceConfig.AUTH_MODE,
      jwksUrl: serviceConfig.AUTH_JWKS_URL,
      audience: serviceConfig.AUTH_AUDIENCE,
      localHeader: serviceConfig.AUTH_LOCAL_HEADER,
    }),
    gate: new AdmissionGate(redis, {
      keyPrefix: queueConfig.REDIS_KEY_PREFIX,
      limit: serviceConfig.RATE_LIMIT_PER_MINUTE,
      windowMs: 60_000,
      dedupWindowSeconds: serviceConfig.DEDUP_WINDOW_SECONDS,
    }),
    lifecycle,
    log,
    statusUrl: serviceConfig.STATUS_URL,
    inputs: { mode: serviceConfig.AUTH_MODE, locations: inputLocations },
    webhooks: { enabled: serviceConfig.WEBHOOK_SECRET !== undefined, policy: webhookPolicy },
    outputPrefix: serviceConfig.OUTPUT_PREFIX,
  };

  return {
    queue: queueRoutes(queue, lifecycle, log, { outputPrefix: serviceConfig.OUTPUT_PREFIX }),
    trigger: admissionRoute(admission, 'trigger', '/trigger-reconstruction'),
    preprocessVideo: admissionRoute(admission, 'preprocess', '/preprocess-video'),
    status: statusRoute({ store, log, sign: urlSigner(signing) }),
    uploads: uploadsRoute({
      identify: admission.identify,
      gate: admission.gate,
      sign: uploadUrlSigner(signing),
      location: inputLocations[0],
      maxBytes: serviceConfig.UPLOAD_MAX_BYTES,
      log,
    }),
    onUpload: uploadHandler({
      store,
      lifecycle,
      log,
      limits: {
        uploadsPrefix: serviceConfig.UPLOADS_PREFIX,
        maxBytes: serviceConfig.UPLOAD_MAX_BYTES,
        maxDurationSeconds: serviceConfig.UPLOAD_MAX_DURATION_SECONDS,
      },
      statusObjects,
      // The trigger's webhook check, so one rule covers both ways a webhook arrives.
      checkWebhook: async (url) =>
        serviceConfig.WEBHOOK_SECRET === undefined
          ? 'webhooks are not configured on this service'
          : webhookProblem(url, webhookPolicy),
    }),
    dispatch: scheduled(log, () => dispatcher.dispatch()),
    reconcile: scheduled(log, () =>
      reconcile({ store, queue, lifecycle, runner, log }, serviceConfig.RECONCILE_BATCH, {
        startSeconds: serviceConfig.DISPATCH_START_LEASE_SECONDS,
        runningSeconds: serviceConfig.DISPATCH_LEASE_SECONDS,
      }),
    ),
    expireLeases: scheduled(log, async () => {
      const expired = await queue.expireLeases();
      await lifecycle.leasesExpired(expired);
      return { expired };
    }),
    /** Lets background work finish, then closes connections (tests, and a host that wants a clean shutdown). */
    shutdown: async (): Promise<void> => {
      while (background.size > 0) await Promise.allSettled([...background]);
      await Promise.all([redis.close(), firestore.terminate()]);
    },
  };
}
