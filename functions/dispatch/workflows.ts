/**
 * WorkflowRunner: the narrow view of Cloud Workflows the dispatcher and reconciler need, on the
 * real ExecutionsClient (REST transport). `WORKFLOWS_EMULATOR_HOST` points it at a local server
 * speaking the same REST API, without credentials, as FIRESTORE_EMULATOR_HOST does for Firestore.
 */
import { createHash } from 'node:crypto';
import { ExecutionsClient } from '@google-cloud/workflows';
import { restClientOptions } from '../google/emulator.js';
import type { WorkflowArgument } from './argument.js';

export type ExecutionState =
  { state: 'ACTIVE' } | { state: 'SUCCEEDED'; result: unknown } | { state: 'FAILED' | 'CANCELLED'; error: string };

export interface WorkflowRunner {
  /**
   * Starts the request's execution, or answers the one already running for it (a start whose
   * answer was lost, or a dispatcher that crashed before recording it): its full name.
   */
  start(argument: WorkflowArgument): Promise<{ name: string; adopted: boolean }>;
  state(execution: string): Promise<ExecutionState>;
  /** Cancels a running execution (its request was cancelled). */
  cancel(execution: string): Promise<void>;
}

/**
 * Whether a failed create may succeed if tried again. The REST transport reports the HTTP status
 * (429 and 5xx are transient; 400 INVALID_ARGUMENT and every other 4xx answer the same each try);
 * the gRPC transport its code (UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL,
 * UNAVAILABLE are). An error with no numeric code never got an answer from Workflows (connection).
 */
const GRPC_TRANSIENT = new Set([2, 4, 8, 10, 13, 14]);

export function transientError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'number') return true;
  return code >= 100 ? code === 429 || code >= 500 : GRPC_TRANSIENT.has(code);
}

/**
 * The label every execution carries with its request id, so that a start can look for the
 * request's running execution before creating one. Label values are at most 63 lowercase letters,
 * digits, `_` and `-` (Execution.labels,
 * https://cloud.google.com/workflows/docs/reference/executions/rest/v1/projects.locations.workflows.executions):
 * request ids are UUIDs and fit; any other id is labelled with its hash.
 */
export const REQUEST_LABEL = 'request_id';

export function requestLabel(requestId: string): string {
  return /^[a-z0-9_-]{1,63}$/.test(requestId)
    ? requestId
    : `h-${createHash('sha256').update(requestId).digest('hex').slice(0, 61)}`;
}

/**
 * The request's executions still running or waiting in the backlog, as executions.list filters them
 * (AIP-160; https://cloud.google.com/workflows/docs/reference/executions/rest/v1/projects.locations.workflows.executions/list).
 */
export const runningFilter = (requestId: string): string =>
  `labels.${REQUEST_LABEL}="${requestLabel(requestId)}" AND (state="ACTIVE" OR state="QUEUED")`;

const STATE_NAMES = ['STATE_UNSPECIFIED', 'ACTIVE', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'UNAVAILABLE', 'QUEUED'];

export function executionState(execution: {
  state?: unknown;
  result?: string | null;
  error?: { payload?: string | null; context?: string | null } | null;
}): ExecutionState {
  const name = typeof execution.state === 'number' ? STATE_NAMES[execution.state] : String(execution.state);
  if (name === 'SUCCEEDED') {
    let result: unknown = execution.result ?? null;
    try {
      result = execution.result ? JSON.parse(execution.result) : null;
    } catch {
      // A non-JSON result is kept as text.
    }
    return { state: 'SUCCEEDED', result };
  }
  if (name === 'FAILED' || name === 'CANCELLED') {
    return { state: name, error: execution.error?.payload ?? execution.error?.context ?? `execution ${name}` };
  }
  return { state: 'ACTIVE' };
}

export function workflowRunner(settings: {
  projectId: string;
  location: string;
  workflow: string;
  emulatorHost?: string;
}): WorkflowRunner {
  const client = new ExecutionsClient(restClientOptions(settings.emulatorHost));
  const parent = client.workflowPath(settings.projectId, settings.location, settings.workflow);
  return {
    async start(argument) {
      const [running] = await client.listExecutions(
        { parent, filter: runningFilter(argument.request_id), pageSize: 1 },
        { autoPaginate: false },
      );
      const existing = running[0]?.name;
      if (existing) return { name: existing, adopted: true };
      const [execution] = await client.createExecution({
        parent,
        execution: {
          argument: JSON.stringify(argument),
          labels: { [REQUEST_LABEL]: requestLabel(argument.request_id) },
        },
      });
      if (!execution.name) throw new Error('Workflows answered an execution without a name');
      return { name: execution.name, adopted: false };
    },
    async state(name) {
      const [execution] = await client.getExecution({ name });
      return executionState(execution);
    },
    async cancel(name) {
      await client.cancelExecution({ name });
    },
  };
}
