/** `onUpload`: a finalized object in the uploads bucket starts a request, or is recorded as rejected. */
import type { CloudEvent } from '@google-cloud/functions-framework';
import { Ajv } from 'ajv';
import type { Logger } from '../../lib/log.js';
import type { Lifecycle } from '../records/lifecycle.js';
import { newRecord, type UploadRef } from '../records/request-record.js';
import type { RequestStore } from '../records/store.js';
import type { StatusObjects } from '../uploads/status-object.js';
import { storageObjectSchema } from './schemas.js';
import { hashToken, newCallbackToken } from './tokens.js';
import { classifyUpload, uploadRequestId, type UploadDecision, type UploadLimits } from './upload.js';

/** The custom metadata key (`x-goog-meta-webhook-url` on upload) that asks for a webhook. */
export const WEBHOOK_METADATA = 'webhook-url';

export const FINALIZED = 'google.cloud.storage.object.v1.finalized';

const validateObject = new Ajv({ allErrors: false }).compile(storageObjectSchema);

export function uploadHandler(deps: {
  store: RequestStore;
  lifecycle: Lifecycle;
  log: Logger;
  limits: UploadLimits & { maxDurationSeconds: number };
  /** Status objects beside uploads; none: uploads are followed only through the records. */
  statusObjects?: StatusObjects;
  /** Why a webhook URL may not be used (the trigger's check), or undefined. */
  checkWebhook: (url: string) => Promise<string | undefined>;
}) {
  // Malformed events are logged and acknowledged: redelivery could never make them valid.
  return async (event: CloudEvent<unknown>): Promise<void> => {
    if (event.type !== FINALIZED) {
      deps.log.error('unexpected event type', { type: event.type, id: event.id });
      return;
    }
    const object = event.data;
    if (!validateObject(object)) {
      deps.log.error('malformed storage event', { id: event.id, problem: validateObject.errors?.[0]?.message });
      return;
    }
    // Our own status objects land in the same bucket: they start nothing and get no status object.
    if (deps.statusObjects?.covers(object.name)) return;
    const requestId = uploadRequestId(object);
    const upload: UploadRef = { bucket: object.bucket, name: object.name, generation: object.generation };
    const webhook = object.metadata?.[WEBHOOK_METADATA];
    let decision: UploadDecision = classifyUpload(object, deps.limits);
    if (decision.accept && webhook !== undefined) {
      const problem = await deps.checkWebhook(webhook);
      if (problem) decision = { accept: false, reason: `metadata ${WEBHOOK_METADATA}: ${problem}` };
    }
    if (!decision.accept) {
      const { reason } = decision;
      await deps.store.reject(requestId, { ...upload, reason, received_at: new Date().toISOString() });
      // Only uploads get a status object: anything else in the bucket is not an uploader's request.
      if (object.name.startsWith(deps.limits.uploadsPrefix))
        await deps.statusObjects?.rejected(upload, requestId, reason);
      deps.log.warning('upload rejected', { bucket: object.bucket, name: object.name, reason });
      return;
    }
    // The token is kept in the status object, the uploader's way to the signed results.
    // Storage failing must not stop the request (the record is the truth): it then starts without a token.
    const token = await deps.statusObjects
      ?.reserveToken(upload, requestId, newCallbackToken)
      .catch((error: unknown) => {
        deps.log.error('status object not created; the request starts without one', { upload: upload.name, error });
        return undefined;
      });
    const { created } = await deps.lifecycle.admit(
      newRecord({
        request_id: requestId,
        // The uploader, as far as the object's name tells: its scope, or the bucket (an operator).
        owner: decision.scope ?? `gs://${object.bucket}`,
        origin: 'upload',
        session_id: decision.session_id,
        input: { uri: `gs://${object.bucket}/${object.name}` },
        // The frames stage enforces the duration (its `max_duration_s`): it is only known once the video is probed.
        params: { input_kind: decision.kind, frames: { max_duration_s: deps.limits.maxDurationSeconds } },
        upload,
        ...(webhook === undefined ? {} : { webhook_url: webhook }),
        ...(token === undefined ? {} : { token_hash: hashToken(token) }),
      }),
    );
    deps.log.info(created ? 'upload admitted' : 'repeated upload event ignored', {
      request_id: requestId,
      name: object.name,
    });
  };
}
