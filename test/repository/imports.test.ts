/**
 * Product code never imports from `test/`: every TypeScript and JavaScript source outside `test/` is read, and
 * each module it names (static and dynamic imports, re-exports, `new URL(…, import.meta.url)`) is resolved
 * against its own folder.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SKIPPED = new Set(['node_modules', 'dist', 'test', 'coverage']);

/** Source files under `folder` (repository-relative), skipping `test/`, build output and hidden folders. */
function sources(folder = ''): string[] {
  return readdirSync(join(ROOT, folder), { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return SKIPPED.has(entry.name) || entry.name.startsWith('.') ? [] : sources(path);
    return /\.(ts|mts|js|mjs)$/.test(entry.name) ? [path] : [];
  });
}

/** The relative module paths `source` (a file at `file`) names that resolve into `test/`. */
function importsFromTest(file: string, source: string): string[] {
  const named = /(?:\bfrom\s*|\bimport\s*\(?\s*|new URL\(\s*)(['"`])(\.{1,2}\/[^'"`]*)\1/g;
  return [...source.matchAll(named)]
    .map((match) => match[2]!)
    .filter((specifier) => {
      const target = relative(ROOT, resolve(ROOT, dirname(file), specifier));
      return target === 'test' || target.startsWith(`test${sep}`);
    });
}

describe('imports', () => {
  it('the check finds an import from test/ (static, dynamic, a URL) and passes one that stays outside', () => {
    const source = [
      "import { call } from '../test/support/http.js';",
      "const helpers = await import('../test/support/functions.js');",
      "const fixture = new URL('../test/fixtures/clip.mp4', import.meta.url);",
      "import { log } from '../lib/log.js';",
      "import { tested } from './test/helper.js';",
    ].join('\n');
    assert.deepEqual(importsFromTest('local/stack.ts', source), [
      '../test/support/http.js',
      '../test/support/functions.js',
      '../test/fixtures/clip.mp4',
    ]);
  });

  it('no file outside test/ imports from test/', () => {
    const files = sources();
    assert.ok(
      files.includes(join('functions', 'index.ts')) && files.includes(join('local', 'stack.ts')),
      'sources found',
    );
    const offenders = files.flatMap((file) =>
      importsFromTest(file, readFileSync(join(ROOT, file), 'utf8')).map((specifier) => `${file}: ${specifier}`),
    );
    assert.deepEqual(offenders, []);
  });
});
