/**
 * Entry point of every Cloud Function (package.json `main`): the table of targets, each registered with
 * the handler functions/compose.ts wires. Terraform deploys one function per target (terraform/functions.tf)
 * and `npm run local` serves every target registered here.
 */
import * as functions from '@google-cloud/functions-framework';
import { composeFunctions } from './compose.js';
import { captureBodyErrors } from './http/body.js';

captureBodyErrors();
const handlers = await composeFunctions();

/** The internal queue API (/enqueue, /next, /status/<id>, /queue); for the workflow and workers. */
functions.http('queue', handlers.queue);
/** POST /trigger-reconstruction: an authenticated caller's request. */
functions.http('trigger', handlers.trigger);
/** POST /preprocess-video: a request that stops after the sfm stage. */
functions.http('preprocessVideo', handlers.preprocessVideo);
/** GET /status?callback_token=…: a request's status, with signed URLs to its outputs. */
functions.http('status', handlers.status);
/** POST /uploads: a signed URL to PUT a video to; the finished upload starts a request (onUpload). */
functions.http('uploads', handlers.uploads);
/** The Cloud Storage event of a finished upload under UPLOADS_PREFIX: starts its request. */
functions.cloudEvent('onUpload', handlers.onUpload);
/** Starts workflow executions for queued requests while capacity allows; for Cloud Scheduler and callers. */
functions.http('dispatch', handlers.dispatch);
/** Re-queues QUEUED records missing from Redis and settles PROCESSING ones whose execution ended. */
functions.http('reconcile', handlers.reconcile);
/** Returns expired leases to the queue (or fails them); for Cloud Scheduler, every minute. */
functions.http('expireLeases', handlers.expireLeases);

export const shutdown = handlers.shutdown;
