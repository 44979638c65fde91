/**
 * `workflows/reconstruct.yaml` assembled to run on this machine: the interpreter with http, the
 * storage connector on the local bucket and the jobs launcher, and the environment the deployed
 * workflow gets (project, region, queue URL, job prefix, stage timeouts from the job definitions).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Logger } from '../lib/log.js';
import type { LocalBucket } from './bucket.js';
import { connectorTimeouts, type JobDefinitions } from './jobs/definitions.js';
import { createLauncher, type JobsLauncher, type LauncherOptions } from './jobs/launcher.js';
import { UnsupportedError } from './workflows/errors.js';
import { httpCalls } from './workflows/http.js';
import { Interpreter } from './workflows/interpreter.js';

export const RECONSTRUCT_PATH = new URL('../../workflows/reconstruct.yaml', import.meta.url);
export const LOCAL_PROJECT = 'local-project';
export const LOCAL_REGION = 'local-region';

export interface LocalWorkflowParts {
  definitions: JobDefinitions;
  bucket: LocalBucket;
  queueUrl: string;
  jobPrefix?: string;
  /** Repository root, where stage commands run. */
  cwd: string;
  log: Logger;
  onExecution?: LauncherOptions['onExecution'];
  /** How long the workflow waits for each stage (seconds); by default the job definitions' rule. */
  stageTimeouts?: Record<string, number>;
  sleep?: (ms: number) => Promise<void>;
  /** The jobs launcher, when something else (the local API) must reach its executions too. */
  launcher?: JobsLauncher;
}

/** The jobs launcher for these definitions and this bucket. */
export function reconstructLauncher(parts: LocalWorkflowParts): JobsLauncher {
  return createLauncher({
    definitions: parts.definitions,
    jobPrefix: parts.jobPrefix ?? 'splatflow-',
    cwd: parts.cwd,
    bucket: parts.bucket,
    log: parts.log,
    onExecution: parts.onExecution,
  });
}

/** The environment variables the deployed workflow reads with sys.get_env. */
export function workflowEnv(parts: LocalWorkflowParts): Record<string, string> {
  return {
    GOOGLE_CLOUD_PROJECT_ID: LOCAL_PROJECT,
    GOOGLE_CLOUD_LOCATION: LOCAL_REGION,
    QUEUE_URL: parts.queueUrl,
    JOB_PREFIX: parts.jobPrefix ?? 'splatflow-',
    STAGE_TIMEOUTS: JSON.stringify(parts.stageTimeouts ?? connectorTimeouts(parts.definitions)),
  };
}

/** The stage names the workflow's `call: run_stage` steps pass, wherever they are nested. */
export function stagesNamed(source: string): string[] {
  const stages = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== 'object' || node === null) return;
    const step = node as { call?: unknown; args?: { stage?: unknown } };
    if (step.call === 'run_stage' && typeof step.args?.stage === 'string') stages.add(step.args.stage);
    Object.values(node).forEach(visit);
  };
  visit(parseYaml(source));
  return [...stages];
}

/** Loads the workflow, refusing it before anything runs if it names a stage with no job definition. */
export function reconstructInterpreter(
  parts: LocalWorkflowParts,
  source = readFileSync(RECONSTRUCT_PATH, 'utf8'),
): Interpreter {
  const undefinedStages = stagesNamed(source).filter((stage) => !(stage in parts.definitions.stages));
  if (undefinedStages.length) {
    throw new UnsupportedError(`the workflow runs stages with no job definition: ${undefinedStages.join(', ')}`);
  }
  return Interpreter.load(source, {
    env: workflowEnv(parts),
    log: parts.log,
    sleep: parts.sleep,
    calls: {
      ...httpCalls,
      ...parts.bucket.storageCalls(),
      ...(parts.launcher ?? reconstructLauncher(parts)).calls,
    },
  });
}
