/**
 * docs/configuration.md, generated from the configuration schemas themselves (each field's
 * `description`, `default`, type and constraints), as terraform-docs writes variable tables from
 * their descriptions: the schema that validates a variable is the only place its meaning is
 * written. `npm run docs:config` writes the file; test/docs/configuration.test.ts fails when the
 * committed one differs from what this renders.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { schema as ingressSchema } from '../../functions/config/service.js';
import { schema as queueSchema } from '../../functions/config/queue.js';
import { depthStage, imageConfigSchema as depthImageSchema } from '../../jobs/depth/stage.js';
import { exportStage } from '../../jobs/export/stage.js';
import { filterStage } from '../../jobs/filter/stage.js';
import { framesStage } from '../../jobs/frames/stage.js';
import { contractSchema } from '../../jobs/runtime/contract.js';
import type { AnyStage } from '../../jobs/runtime/stage.js';
import { imageConfigSchema as sfmImageSchema, sfmStage } from '../../jobs/sfm/stage.js';

export const REFERENCE_PATH = fileURLToPath(new URL('../../../docs/configuration.md', import.meta.url));

interface Field {
  description?: string;
  type?: string;
  enum?: readonly unknown[];
  /** Environment variables' defaults are scalars. */
  default?: string | number | boolean;
  pattern?: string;
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  multipleOf?: number;
  minLength?: number;
}

interface ObjectSchema {
  properties?: Record<string, Field>;
  required?: readonly string[];
  anyOf?: readonly { required?: readonly string[] }[];
}

interface Section {
  title: string;
  /** The module that defines and loads the schema, relative to the repository root. */
  source: string;
  /** Who reads it, and when. */
  intro: string;
  /** A JSON schema of `type: 'object'`, as ajv's `JSONSchemaType` types it. */
  schema: object;
}

export const SECTIONS: readonly Section[] = [
  {
    title: 'Functions: Redis and the queue',
    source: 'functions/config/queue.ts',
    intro: 'Read by every function (they are one module, `functions/index.ts`) at start-up.',
    schema: queueSchema,
  },
  {
    title: 'Functions: ingress, records and dispatch',
    source: 'functions/config/service.ts',
    intro: "Read by every function at start-up, beside the queue's own.",
    schema: ingressSchema,
  },
  {
    title: 'Stage jobs: the stage contract',
    source: 'jobs/runtime/contract.ts',
    intro:
      'What the workflow (or the local launcher) gives every stage execution; the rest of the contract is in [jobs/README.md](../jobs/README.md#the-stage-contract). The Python stages read the same variables (`jobs/runtime_py/stage.py`).',
    schema: contractSchema,
  },
  {
    title: 'Stage jobs: the sfm image',
    source: 'jobs/sfm/stage.ts',
    intro: 'Set by the image (`jobs/containers/colmap.Dockerfile`) or by hand.',
    schema: sfmImageSchema,
  },
  {
    title: 'Stage jobs: the depth image',
    source: 'jobs/depth/stage.ts',
    intro:
      "Set by the image, Terraform's `stage_environment`, or the environment of `npm run reconstruct` (which skips depth when no model is named: `local/reconstruct/params.ts`).",
    schema: depthImageSchema,
  },
];

/** The TypeScript stages in pipeline order, each with the schema its `SPLATFLOW_PARAMS` must meet. */
export const PARAMETER_STAGES: readonly { stage: AnyStage; source: string }[] = [
  { stage: framesStage, source: 'jobs/frames/stage.ts' },
  { stage: filterStage, source: 'jobs/filter/stage.ts' },
  { stage: depthStage, source: 'jobs/depth/stage.ts' },
  { stage: sfmStage, source: 'jobs/sfm/schema.ts' },
  { stage: exportStage, source: 'jobs/export/schema.ts' },
];

/** Variables read one by one, outside a schema: where, and what they do. */
export const ELSEWHERE: readonly { name: string; source: string; meaning: string }[] = [
  {
    name: 'SPLATFLOW_INPUT_LOCATIONS',
    source: 'jobs/runtime/input-location.ts',
    meaning:
      "Comma-separated `gs://BUCKET/PREFIX/` folders the frames stage accepts inputs from (Terraform sets the functions' `INPUT_LOCATIONS` on every job); unset: any input.",
  },
  {
    name: 'SPLATFLOW_SCRATCH',
    source: 'jobs/runtime/runner.ts',
    meaning:
      'Where a stage makes its scratch folder (removed when the stage ends; `jobs/runtime_py/stage.py` too); default: the system temporary folder.',
  },
  {
    name: 'SPLATFLOW_PYTHON',
    source: 'local/python.ts',
    meaning:
      'The Python of the stages run locally, the tests, `bench:train` and `lint:py`; default `.venv/bin/python` (`local/setup` installs `requirements.lock` there).',
  },
  {
    name: 'FIRESTORE_EMULATOR_HOST',
    source: 'local/stack.ts',
    meaning: 'Read by the Firestore client: `host:port` of an emulator (the local stack and the tests set it).',
  },
  {
    name: 'STORAGE_EMULATOR_HOST',
    source: 'jobs/runtime/storage-gcs.ts',
    meaning: 'Read by the Cloud Storage client: base URL of a local server speaking its JSON API (tests).',
  },
];

const code = (text: string): string => '`' + text.replace(/\|/g, '\\|') + '`';

function defaultOf(name: string, field: Field, schema: ObjectSchema): string {
  if (field.default === '') return 'empty';
  if (field.default !== undefined) return code(String(field.default));
  const alternatives = schema.anyOf?.find((branch) => branch.required?.includes(name));
  if (alternatives) {
    const all = schema.anyOf?.flatMap((branch) => branch.required ?? []) ?? [];
    return `required: one of ${all.map(code).join(', ')}`;
  }
  return schema.required?.includes(name) ? 'required' : '';
}

function acceptedOf(field: Field): string {
  if (field.enum) return field.enum.map((value) => code(String(value))).join(', ');
  if (field.type === 'boolean') return '`true`, `false`';
  if (field.type === 'integer' || field.type === 'number') {
    const bounds = [
      field.minimum !== undefined ? `≥ ${field.minimum}` : undefined,
      field.exclusiveMinimum !== undefined ? `> ${field.exclusiveMinimum}` : undefined,
      field.maximum !== undefined ? `≤ ${field.maximum}` : undefined,
      field.multipleOf !== undefined ? `a multiple of ${field.multipleOf}` : undefined,
    ].filter((bound) => bound !== undefined);
    return [field.type, bounds.join(', ')].filter(Boolean).join(' ');
  }
  if (field.pattern) return `matching ${code(field.pattern)}`;
  if (field.minLength)
    return field.minLength === 1 ? 'text, not empty' : `text, at least ${field.minLength} characters`;
  return 'text';
}

function table(jsonSchema: object, source: string, column = 'variable'): string[] {
  const schema = jsonSchema as ObjectSchema;
  const rows = Object.entries(schema.properties ?? {}).map(([name, field]) => {
    if (!field.description) throw new Error(`${source}: ${name} has no description`);
    const cells = [code(name), defaultOf(name, field, schema), acceptedOf(field), field.description];
    return `| ${cells.join(' | ')} |`;
  });
  return [`| ${column} | default | accepted | meaning |`, '| --- | --- | --- | --- |', ...rows];
}

/** The whole page, formatted as the repository's prettier configuration formats markdown. */
export async function renderReference(): Promise<string> {
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated by `npm run docs:config` (test/docs/config-reference.ts) from the schemas named below: edit the',
    'descriptions there, not this file. test/docs/configuration.test.ts fails when the two differ. -->',
    '',
    'Every variable is read from the environment once, at start-up, and validated against its schema',
    '(`lib/config.ts`); a missing or malformed value stops start-up with a message naming it. Numbers and booleans',
    'are written as text and converted by the schema. Terraform sets them in the cloud',
    '([terraform/README.md](../terraform/README.md#variables)); the local stack sets them for local runs',
    "([local-runtime.md](local-runtime.md)). The workflow's own variables are in",
    '[workflows/README.md](../workflows/README.md#environment-set-when-the-workflow-is-deployed).',
  ];
  for (const section of SECTIONS) {
    lines.push('', `## ${section.title}`, '', `[${section.source}](../${section.source}). ${section.intro}`, '');
    lines.push(...table(section.schema, section.source));
  }
  lines.push('', '## Read outside a schema', '', '| variable | read in | meaning |', '| --- | --- | --- |');
  for (const { name, source, meaning } of ELSEWHERE) {
    lines.push(`| ${code(name)} | [${source}](../${source}) | ${meaning} |`);
  }
  lines.push(
    '',
    '## Stage parameters',
    '',
    'What a request may set per stage (`params.<stage>` in the request, `SPLATFLOW_PARAMS` to the stage); anything',
    'else, or a value out of range, is refused (exit 2) naming the parameter. The train and mesh stages (Python) take',
    'theirs from presets: [training.md](training.md).',
  );
  for (const { stage, source } of PARAMETER_STAGES) {
    lines.push('', `### ${stage.name}`, '', `[${source}](../${source})`, '');
    lines.push(...table(stage.params, source, 'parameter'));
  }
  const options = (await prettier.resolveConfig(REFERENCE_PATH)) ?? {};
  return prettier.format(lines.join('\n') + '\n', { ...options, filepath: REFERENCE_PATH });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await writeFile(REFERENCE_PATH, await renderReference());
}
