/**
 * Admission's check that a request can be started at all: its workflow argument (request id,
 * input, work folder and params, as the dispatcher will send it) must fit what Workflows accepts.
 * Refused here with a 400 naming the limit, instead of failing later at dispatch.
 */
import { randomUUID } from 'node:crypto';
import { ARGUMENT_LIMIT_BYTES, argumentBytes, workflowArgument } from '../dispatch/argument.js';
import { HttpError } from '../http/errors.js';
import type { RequestRecord } from '../records/request-record.js';

export function refuseOversizedArgument(
  request: Pick<RequestRecord, 'input' | 'params'> & { request_id?: string },
  outputPrefix: string,
): void {
  // Every request id is a UUID; before one is chosen, any UUID measures the same.
  const bytes = argumentBytes(workflowArgument({ request_id: randomUUID(), ...request }, outputPrefix));
  if (bytes > ARGUMENT_LIMIT_BYTES) {
    throw new HttpError(
      400,
      'PARAMS_TOO_LARGE',
      `body.params makes the workflow argument ${bytes} bytes; Workflows accepts at most ${ARGUMENT_LIMIT_BYTES}`,
      {},
      { limit_bytes: ARGUMENT_LIMIT_BYTES },
    );
  }
}
