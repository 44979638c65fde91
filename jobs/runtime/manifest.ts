/**
 * `manifest.json`: what a stage read, wrote (sizes, checksums), with which parameters and tools,
 * how long it took and what it measured. Written last; its presence means "this stage is done".
 */
import { Ajv, type JSONSchemaType, type Schema } from 'ajv';

export interface FileRecord {
  /** Relative to the stage folder for outputs; a URI for inputs. */
  path: string;
  size: number;
  sha256: string;
}

export interface Manifest<P = Record<string, unknown>, M = Record<string, unknown>> {
  schema_version: 1;
  stage: string;
  request_id: string;
  started_at: string;
  finished_at: string;
  duration_s: number;
  inputs: FileRecord[];
  outputs: FileRecord[];
  parameters: P;
  tools: Record<string, string>;
  timings: Record<string, number>;
  metrics: M;
}

const fileRecord: JSONSchemaType<FileRecord> = {
  type: 'object',
  properties: {
    path: { type: 'string', minLength: 1 },
    size: { type: 'integer', minimum: 0 },
    sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
  },
  required: ['path', 'size', 'sha256'],
  additionalProperties: false,
};

/** The common envelope with the stage's own parameter and metric schemas slotted in. */
export function manifestSchema(parameters: Schema, metrics: Schema): Schema {
  return {
    type: 'object',
    properties: {
      schema_version: { const: 1 },
      stage: { type: 'string' },
      request_id: { type: 'string' },
      started_at: { type: 'string', minLength: 20 },
      finished_at: { type: 'string', minLength: 20 },
      duration_s: { type: 'number', minimum: 0 },
      inputs: { type: 'array', items: fileRecord },
      outputs: { type: 'array', items: fileRecord },
      parameters,
      tools: { type: 'object', additionalProperties: { type: 'string' } },
      timings: { type: 'object', additionalProperties: { type: 'number', minimum: 0 } },
      metrics,
    },
    required: [
      'schema_version',
      'stage',
      'request_id',
      'started_at',
      'finished_at',
      'duration_s',
      'inputs',
      'outputs',
      'parameters',
      'tools',
      'timings',
      'metrics',
    ],
    additionalProperties: false,
  };
}

/** Throws when a manifest does not match its schema: a bug in the stage, never a user error. */
export function checkManifest(schema: Schema, manifest: unknown): void {
  const ajv = new Ajv({ allErrors: true, validateFormats: false });
  const validate = ajv.compile(schema);
  if (!validate(manifest)) {
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
    throw new Error(`manifest does not match its schema: ${problems.join('; ')}`);
  }
}
