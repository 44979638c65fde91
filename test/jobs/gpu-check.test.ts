/**
 * jobs/train/gpu-check on a machine without a GPU (CI, these machines): both halves say so in a
 * line each and the script fails, rather than training on the CPU or hanging. What it measures
 * on a GPU is unrun here (docs/performance.md).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { pythonInterpreter } from '../../local/python.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const python = pythonInterpreter(root);

test('without a GPU the gpu check refuses both halves clearly', { skip: existsSync('/dev/nvidia0') }, () => {
  const run = spawnSync('jobs/train/gpu-check', ['/nonexistent-sfm'], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, SPLATFLOW_PYTHON: python },
    timeout: 120_000,
  });
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, /^gpu-check: no CUDA device \(torch\.cuda\.is_available\(\) is False\)/m);
  assert.match(run.stderr, /^depth gpu-check: the CUDA execution provider is not available/m);
  assert.equal(run.stdout.trim(), '', 'no figures without a GPU');
});
