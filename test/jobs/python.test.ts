/**
 * Runs the Python stages' own tests (jobs/**\/test_*.py: the CPU rasterizer against its dense reference, training
 * and mesh on synthetic scenes, the job runtime) with the interpreter requirements.lock is installed in (local/python.ts), one test per
 * module, so `npm test` covers them and a failure names its module; checks that what a Python stage records on
 * failure is the TypeScript runtime's record, and that the train presets `npm run reconstruct` offers are the train
 * stage's.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { checkErrorRecord } from '../../jobs/runtime/error-record.js';
import { pythonInterpreter } from '../../local/python.js';
import { TRAIN_PRESETS } from '../../local/reconstruct/params.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const python = pythonInterpreter(root);

// The Python test modules as unittest's discovery names them (jobs/**/test_*.py → jobs.train.test_x), each run as a
// test of its own so that a failure names its module.
const pythonTests = readdirSync(join(root, 'jobs'), { recursive: true, encoding: 'utf8' })
  .filter((path) => /(^|\/)test_[^/]*\.py$/.test(path))
  .map((path) => `jobs.${path.slice(0, -'.py'.length).replaceAll('/', '.')}`)
  .sort();

test('every folder of Python code under jobs/ has a test module', () => {
  const pythonDirs = readdirSync(join(root, 'jobs'), { recursive: true, encoding: 'utf8' })
    .filter((path) => path.endsWith('.py') && !path.endsWith('__init__.py'))
    .map((path) => `jobs.${dirname(path).replaceAll('/', '.')}`);
  const tested = new Set(pythonTests.map((module) => module.slice(0, module.lastIndexOf('.'))));
  const untested = [...new Set(pythonDirs)].filter((dir) => !tested.has(dir));
  assert.deepEqual(untested, []);
});

for (const module of pythonTests) {
  test(`python ${module}`, { timeout: 600_000 }, (t) => {
    const run = spawnSync(python, ['-m', 'unittest', module], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, METADATA_SERVER_DETECTION: 'none', NUMBA_NUM_THREADS: '2' },
    });
    assert.equal(run.status, 0, `${python} -m unittest ${module} failed:\n${run.stdout}\n${run.stderr}`);
    // unittest's closing lines ("Ran 12 tests in 3.1s", "OK (skipped=2)") in the report
    t.diagnostic(run.stderr.trim().split('\n').slice(-3).join(' ').replace(/\s+/g, ' '));
  });
}

test("the presets `npm run reconstruct --preset` offers are the train stage's, in its order", () => {
  const run = spawnSync(
    python,
    ['-c', 'import json; from jobs.train.presets import PRESETS; print(json.dumps(list(PRESETS)))'],
    {
      cwd: root,
      encoding: 'utf8',
    },
  );
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout) as unknown, [...TRAIN_PRESETS]);
});

test("a Python stage's error.json matches the record the TypeScript runtime defines", async () => {
  const work = await mkdtemp(join(tmpdir(), 'python-error-record-'));
  try {
    // The real mesh stage, refused (an unknown parameter) and failing (no train output), as Cloud Run runs it.
    const cases = [
      { params: { nope: 1 }, code: 2, message: /unknown parameter 'nope'/ },
      { params: {}, code: 1, message: /run the train stage first/ },
    ];
    for (const [i, expected] of cases.entries()) {
      const prefix = join(work, `req-${i}`) + '/';
      const run = spawnSync(python, ['jobs/mesh/main.py'], {
        cwd: root,
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH,
          SPLATFLOW_STAGE: 'mesh',
          SPLATFLOW_REQUEST_ID: `req-${i}`,
          SPLATFLOW_INPUT_URI: '/dev/null',
          SPLATFLOW_REQUEST_PREFIX: prefix,
          SPLATFLOW_PARAMS: JSON.stringify(expected.params),
          CLOUD_RUN_EXECUTION: 'splatflow-mesh-abc123',
          CLOUD_RUN_TASK_ATTEMPT: '0',
        },
      });
      assert.equal(run.status, expected.code, run.stderr);
      const record = checkErrorRecord(JSON.parse(await readFile(join(prefix, 'mesh', 'error.json'), 'utf8')));
      assert.equal(record.exit_code, expected.code);
      assert.equal(record.refused, expected.code === 2);
      assert.match(record.message, expected.message);
      assert.equal(run.stderr.trim(), `mesh: ${record.message}`);
      assert.equal(record.execution, 'splatflow-mesh-abc123');
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
