/**
 * `jobs/definitions.json`, the one definition of every stage job, read and schema-checked. Terraform
 * reads the same file, so local runs and the cloud cannot drift.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type JSONSchemaType } from 'ajv';

export interface StageJob {
  image: string;
  command: string[];
  cpu: string;
  memory: string;
  gpu: number;
  timeout_seconds: number;
  max_retries: number;
}

export interface JobDefinitions {
  images: Record<string, { dockerfile: string }>;
  stages: Record<string, StageJob>;
}

const schema: JSONSchemaType<JobDefinitions> = {
  type: 'object',
  required: ['images', 'stages'],
  properties: {
    images: {
      type: 'object',
      required: [],
      additionalProperties: {
        type: 'object',
        required: ['dockerfile'],
        properties: { dockerfile: { type: 'string' } },
      },
    },
    stages: {
      type: 'object',
      required: [],
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['image', 'command', 'cpu', 'memory', 'gpu', 'timeout_seconds', 'max_retries'],
        properties: {
          image: { type: 'string' },
          command: { type: 'array', items: { type: 'string' }, minItems: 1 },
          cpu: { type: 'string' },
          memory: { type: 'string' },
          gpu: { type: 'integer', minimum: 0 },
          timeout_seconds: { type: 'integer', minimum: 1 },
          max_retries: { type: 'integer', minimum: 0 },
        },
      },
    },
  },
};

const validate = new Ajv({ allErrors: true }).compile(schema);

export const DEFINITIONS_PATH = new URL('../../../jobs/definitions.json', import.meta.url);

export function loadDefinitions(path: string | URL = DEFINITIONS_PATH): JobDefinitions {
  const definitions: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (!validate(definitions)) {
    const problem = validate.errors?.[0];
    throw new Error(`job definitions ${String(path)}: ${problem?.instancePath ?? ''} ${problem?.message ?? 'invalid'}`);
  }
  for (const [stage, job] of Object.entries(definitions.stages)) {
    if (!(job.image in definitions.images))
      throw new Error(`job definitions: stage ${stage} uses unknown image ${job.image}`);
  }
  return definitions;
}

/**
 * Time Cloud Run may take before a task's own timeout starts: scheduling onto a GPU (capacity is on demand)
 * and pulling the image (the GPU images are several GB), per attempt.
 */
export const START_HEADROOM_SECONDS = { gpu: 1200, cpu: 300 } as const;

/**
 * How long the workflow waits for a stage's execution (`STAGE_TIMEOUTS`) before it cancels it and fails
 * the request: every attempt Cloud Run may make of the task, each up to its timeout plus the start headroom.
 * Terraform sets the workflow's variable with the same rule.
 */
export function connectorTimeouts(definitions: JobDefinitions): Record<string, number> {
  return Object.fromEntries(
    Object.entries(definitions.stages).map(([stage, job]) => [
      stage,
      (job.timeout_seconds + START_HEADROOM_SECONDS[job.gpu > 0 ? 'gpu' : 'cpu']) * (job.max_retries + 1),
    ]),
  );
}
