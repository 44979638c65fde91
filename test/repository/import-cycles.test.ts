/**
 * No TypeScript module imports itself, however indirectly: the product's folders, the tests and the viewer, read from
 * their sources. The finder is first shown a cycle it must report, so that an empty answer means something.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { importCycles, importGraph, typescriptFiles } from '../support/import-graph.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const sourceDirs = ['functions', 'jobs', 'lib', 'local', 'test', 'viewer'];

test('the import-cycle finder reports a cycle through a re-export, a type import and a dynamic import', async () => {
  const work = await mkdtemp(join(tmpdir(), 'import-cycles-'));
  try {
    const files = {
      'a/index.ts': "export { b } from '../b.js';\n",
      'b.ts': "import type { C } from './c/c.js';\nexport const b = 1 as unknown as C;\n",
      'c/c.ts': "export type C = number;\nexport const load = () => import('../a/index.js');\n",
      'd.ts': "import { b } from './a/index.js';\nexport const d = b;\n",
    };
    for (const [path, text] of Object.entries(files)) {
      await mkdir(join(work, dirname(path)), { recursive: true });
      await writeFile(join(work, path), text);
    }
    const graph = importGraph(work, typescriptFiles(work, ['a', 'c', '.']));
    assert.deepEqual(importCycles(graph), [['a/index.ts', 'b.ts', 'c/c.ts', 'a/index.ts']]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test('no TypeScript module is part of an import cycle', () => {
  const files = typescriptFiles(root, sourceDirs);
  assert.ok(files.length > 100, `only ${files.length} TypeScript files found under ${sourceDirs.join(', ')}`);
  const cycles = importCycles(importGraph(root, files));
  assert.deepEqual(
    cycles.map((cycle) => cycle.join(' → ')),
    [],
  );
});
