/**
 * The stage contract (jobs/README.md): everything a stage needs arrives in five environment
 * variables, identical in the cloud and locally.
 */
import { Ajv, type JSONSchemaType } from 'ajv';
import { loadConfig } from '../../lib/config.js';
import { InputRefused } from './errors.js';

/**
 * Every stage, in pipeline order: the one list. jobs/definitions.json and workflows/reconstruct.yaml cannot import
 * it; test/jobs/stages.test.ts fails when they name other stages.
 */
export const STAGES = ['frames', 'filter', 'depth', 'sfm', 'train', 'mesh', 'export'] as const;
export type StageName = (typeof STAGES)[number];

interface ContractEnv {
  SPLATFLOW_STAGE: StageName;
  SPLATFLOW_REQUEST_ID: string;
  SPLATFLOW_INPUT_URI: string;
  SPLATFLOW_REQUEST_PREFIX: string;
  SPLATFLOW_PARAMS: string;
}

export const contractSchema: JSONSchemaType<ContractEnv> = {
  type: 'object',
  properties: {
    SPLATFLOW_STAGE: { description: 'The stage to run.', type: 'string', enum: [...STAGES] },
    SPLATFLOW_REQUEST_ID: { description: 'The request id.', type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' },
    SPLATFLOW_INPUT_URI: {
      description:
        "The request's original input (a video, an image folder or a `.zip`): `gs://…`, `file://…` or a path.",
      type: 'string',
      minLength: 1,
    },
    SPLATFLOW_REQUEST_PREFIX: {
      description: "The request's work folder, `gs://BUCKET/requests/{id}/` or a local folder; ends with `/`.",
      type: 'string',
      pattern: '/$',
    },
    SPLATFLOW_PARAMS: { description: "JSON object of this stage's parameters.", type: 'string', default: '{}' },
  },
  required: ['SPLATFLOW_STAGE', 'SPLATFLOW_REQUEST_ID', 'SPLATFLOW_INPUT_URI', 'SPLATFLOW_REQUEST_PREFIX'],
};

export interface StageContract {
  stage: StageName;
  requestId: string;
  inputUri: string;
  /** Ends with `/`. */
  requestPrefix: string;
  params: Record<string, unknown>;
}

export function parseContract(env: Record<string, string | undefined>): StageContract {
  const raw = loadConfig(contractSchema, env);
  let params: unknown;
  try {
    params = JSON.parse(raw.SPLATFLOW_PARAMS);
  } catch {
    throw new InputRefused('SPLATFLOW_PARAMS is not valid JSON');
  }
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    throw new InputRefused('SPLATFLOW_PARAMS must be a JSON object');
  }
  return {
    stage: raw.SPLATFLOW_STAGE,
    requestId: raw.SPLATFLOW_REQUEST_ID,
    inputUri: raw.SPLATFLOW_INPUT_URI,
    requestPrefix: raw.SPLATFLOW_REQUEST_PREFIX,
    params: params as Record<string, unknown>,
  };
}

/**
 * A stage's parameters: the schema fills defaults and refuses unknown or ill-typed values with
 * a cause naming the parameter.
 */
export function parseParams<T>(schema: JSONSchemaType<T>, params: Record<string, unknown>): T {
  const ajv = new Ajv({ useDefaults: true, allErrors: true });
  const validate = ajv.compile(schema);
  const copy = structuredClone(params);
  if (validate(copy)) return copy;
  const problems = (validate.errors ?? []).map((e) => {
    const extra = (e.params as { additionalProperty?: string }).additionalProperty;
    return extra ? `unknown parameter ${extra}` : `${e.instancePath.replace(/^\//, '') || 'params'} ${e.message}`;
  });
  throw new InputRefused(`invalid parameters: ${problems.join('; ')}`);
}
