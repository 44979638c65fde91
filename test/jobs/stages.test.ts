/**
 * One list of stages (jobs/runtime/contract.ts `STAGES`, which the stage runner and the report read): the job
 * definitions and the workflow, which cannot import it, name the same stages; a stage added to or dropped from
 * one of them alone fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { STAGES } from '../../jobs/runtime/contract.js';
import { loadDefinitions } from '../../local/jobs/definitions.js';
import { RECONSTRUCT_PATH, stagesNamed } from '../../local/reconstruct-workflow.js';

const workflow = readFileSync(RECONSTRUCT_PATH, 'utf8');

/** The value of the step `name` (anywhere in the workflow), found by walking the parsed YAML. */
function step(name: string): unknown {
  const found: unknown[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== 'object' || node === null) return;
    if (name in node) found.push((node as Record<string, unknown>)[name]);
    Object.values(node).forEach(visit);
  };
  visit(parseYaml(workflow));
  assert.equal(found.length, 1, `one step ${name}`);
  return found[0];
}

describe('the stage list', () => {
  it('jobs/definitions.json defines a job for every stage, in pipeline order', () => {
    assert.deepEqual(Object.keys(loadDefinitions().stages), [...STAGES]);
  });

  it('the workflow runs every stage, and no other', () => {
    assert.deepEqual(stagesNamed(workflow).sort(), [...STAGES].sort());
  });

  it("the workflow's stop_after takes every stage but depth (it runs beside sfm), in order, and says so", () => {
    const check = JSON.stringify(step('check_stop_after'));
    const choices = /stop_after in \[([^\]]*)\]/.exec(check)?.[1];
    assert.ok(choices, check);
    const expected = STAGES.filter((stage) => stage !== 'depth');
    assert.deepEqual(JSON.parse(`[${choices.replaceAll('\\"', '"')}]`), expected);
    assert.ok(check.includes(`params.stop_after must be one of ${expected.join(', ')}; got`), check);
  });
});
