/**
 * WorkflowRunner: the narrow view of Cloud Workflows the dispatcher and reconciler need, on the
 * real ExecutionsClient (REST transport). `WORKFLOWS_EMULATOR_HOST` points it at a local server
 * speaking the same REST API, without credentials, as FIRESTORE_EMULATOR_HOST does for Firestore.
 */
import { ExecutionsClient } from '@google-cloud/workflows';
import { restClientOptions } from '../google/emulator.js';

export interface WorkflowArgument {
  request_id: string;
  input_uri: string;
  output_prefix: string;
  params: Record<string, unknown>;
}

export type ExecutionState =
  { state: 'ACTIVE' } | { state: 'SUCCEEDED'; result: unknown } | { state: 'FAILED' | 'CANCELLED'; error: string };

export interface WorkflowRunner {
  /** Starts an execution; answers its full name. */
  start(argument: WorkflowArgument): Promise<string>;
  state(execution: string): Promise<ExecutionState>;
  /** Cancels a running execution (its request was cancelled). */
  cancel(execution: string): Promise<void>;
}

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
      const [execution] = await client.createExecution({ parent, execution: { argument: JSON.stringify(argument) } });
      if (!execution.name) throw new Error('Workflows answered an execution without a name');
      return execution.name;
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
