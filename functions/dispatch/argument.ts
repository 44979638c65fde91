/**
 * The argument of a request's workflow execution, built in this one place for the dispatcher and
 * for admission, and the size Workflows accepts for it: "The size limit is 32KB" (Execution.argument,
 * https://cloud.google.com/workflows/docs/reference/executions/rest/v1/projects.locations.workflows.executions;
 * https://cloud.google.com/workflows/quotas). Read as 32,000 bytes, so that it holds whichever
 * reading of "KB" Workflows applies.
 */
import type { RequestRecord } from '../records/request-record.js';

export const ARGUMENT_LIMIT_BYTES = 32_000;

export interface WorkflowArgument {
  request_id: string;
  input_uri: string;
  output_prefix: string;
  params: Record<string, unknown>;
}

export function workflowArgument(
  record: Pick<RequestRecord, 'request_id' | 'input' | 'params'>,
  outputPrefix: string,
): WorkflowArgument {
  return {
    request_id: record.request_id,
    input_uri: record.input.uri,
    output_prefix: `${outputPrefix}${record.request_id}/`,
    params: record.params,
  };
}

/** The size Workflows measures: the UTF-8 bytes of the argument's JSON text. */
export const argumentBytes = (argument: unknown): number => Buffer.byteLength(JSON.stringify(argument), 'utf8');
