/** `onUpload`: a finalized object in the uploads bucket starts a request, or is recorded as rejected. */
import type { CloudEvent } from '@google-cloud/functions-framework';
import { Ajv } from 'ajv';
import type { Logger } from '../../lib/log.js';
import type { Lifecycle } from '../records/lifecycle.js';
import { newRecord } from '../records/record.js';
import type { RequestStore } from '../records/store.js';
import { storageObjectSchema } from './schemas.js';
import { classifyUpload, uploadRequestId, type UploadLimits } from './upload.js';

export const FINALIZED = 'google.cloud.storage.object.v1.finalized';

const validateObject = new Ajv({ allErrors: false }).compile(storageObjectSchema);

export function uploadHandler(deps: {
  store: RequestStore;
  lifecycle: Lifecycle;
  log: Logger;
  limits: UploadLimits & { maxDurationSeconds: number };
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
    const requestId = uploadRequestId(object);
    const decision = classifyUpload(object, deps.limits);
    if (!decision.accept) {
      await deps.store.reject(requestId, {
        bucket: object.bucket,
        name: object.name,
        generation: object.generation,
        reason: decision.reason,
        received_at: new Date().toISOString(),
      });
      deps.log.warning('upload rejected', { bucket: object.bucket, name: object.name, reason: decision.reason });
      return;
    }
    const { created } = await deps.lifecycle.admit(
      newRecord({
        request_id: requestId,
        // The uploader, as far as the object's name tells: its scope, or the bucket (an operator).
        owner: decision.scope ?? `gs://${object.bucket}`,
        origin: 'upload',
        session_id: decision.session_id,
        input: { uri: `gs://${object.bucket}/${object.name}` },
        // The frames stage enforces the duration: it is only known once the video is probed.
        params: { input_kind: decision.kind, max_duration_seconds: deps.limits.maxDurationSeconds },
      }),
    );
    deps.log.info(created ? 'upload admitted' : 'repeated upload event ignored', {
      request_id: requestId,
      name: object.name,
    });
  };
}
