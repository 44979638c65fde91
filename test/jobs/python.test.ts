/**
 * Runs the Python stages' own tests (jobs/**\/test_*.py: the CPU rasterizer against its dense reference, training
 * and mesh on synthetic scenes) with the interpreter that has Debian's torch and numba, so `npm test` covers them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const python = process.env.SPLATFLOW_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

test('python stage tests pass (train, mesh, job runtime)', { timeout: 600_000 }, () => {
  const run = spawnSync(python, ['-m', 'unittest', 'discover', '-s', 'jobs', '-t', '.', '-p', 'test_*.py'], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, METADATA_SERVER_DETECTION: 'none', NUMBA_NUM_THREADS: '2' },
  });
  assert.equal(run.status, 0, `${python} -m unittest failed:\n${run.stdout}\n${run.stderr}`);
});
