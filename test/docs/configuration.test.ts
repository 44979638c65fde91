/**
 * docs/configuration.md is generated from the configuration schemas (test/docs/config-reference.ts):
 * it must be exactly what the generator writes today, so a variable added, removed or redescribed
 * in a schema without `npm run docs:config` fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ELSEWHERE, PARAMETER_STAGES, REFERENCE_PATH, renderReference, SECTIONS } from './config-reference.js';

const root = new URL('../../../', import.meta.url);
const source = (path: string): string => readFileSync(new URL(path, root), 'utf8');

describe('the configuration reference', () => {
  it('is what the schemas generate (run npm run docs:config after changing one)', async () => {
    assert.equal(readFileSync(REFERENCE_PATH, 'utf8'), await renderReference());
  });

  it('lists every property of every schema and stage, each with its description', async () => {
    const page = await renderReference();
    const schemas = [
      ...SECTIONS.map(({ schema, source: file }) => ({ schema, file })),
      ...PARAMETER_STAGES.map(({ stage, source: file }) => ({ schema: stage.params, file })),
    ];
    for (const { schema, file } of schemas) {
      const properties = Object.entries(
        (schema as { properties: Record<string, { description?: string }> }).properties,
      );
      assert.ok(properties.length > 0, `${file}: no properties`);
      for (const [name, field] of properties) {
        assert.ok(field.description, `${file}: ${name} has no description`);
        assert.match(page, new RegExp(`^\\| \`${name}\` +\\|`, 'm'), `${name} is not in the reference`);
      }
    }
  });

  it('documents the parameters of every stage jobs/run-stage.js runs, in pipeline order', () => {
    const definitions = JSON.parse(source('jobs/definitions.json')) as {
      stages: Record<string, { command: string[] }>;
    };
    const typescriptStages = Object.entries(definitions.stages)
      .filter(([, { command }]) => command.includes('dist/jobs/run-stage.js'))
      .map(([name]) => name);
    assert.deepEqual(
      PARAMETER_STAGES.map(({ stage }) => stage.name),
      typescriptStages,
    );
  });

  it('names, for each variable read outside a schema, a file that reads it', () => {
    for (const { name, source: file } of ELSEWHERE) {
      assert.ok(source(file).includes(name), `${file} does not mention ${name}`);
    }
  });
});
