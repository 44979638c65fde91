/**
 * The documentation's relative links lead somewhere: every `[text](target)` in README.md, docs/*.md
 * and the folders' READMEs names a file or folder of the repository, and a `#fragment` names a
 * heading of the page it points at (GitHub's anchor rules). External links are not fetched.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** README.md, docs/*.md, and the README.md of each top-level folder and its subfolders. */
function pages(): string[] {
  const found = [
    'README.md',
    ...readdirSync(join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.') || ['node_modules', 'dist'].includes(entry.name)) continue;
      const sub = join(dir, entry.name);
      if (existsSync(join(root, sub, 'README.md'))) found.push(join(sub, 'README.md'));
      walk(sub);
    }
  };
  walk('.');
  return found;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of withoutFences(markdown).split('\n')) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading?.[1]) continue;
    const base = heading[1]
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

/** Fenced blocks and inline code hold examples, not links or headings. */
const withoutFences = (markdown: string): string => markdown.replace(/^(```|~~~)[\s\S]*?^\1/gm, '');
const withoutCode = (markdown: string): string => withoutFences(markdown).replace(/`[^`\n]*`/g, '');

function links(markdown: string): string[] {
  const found: string[] = [];
  for (const match of withoutCode(markdown).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) found.push(match[1]!);
  // Reference definitions, `[name]: target`.
  for (const match of withoutCode(markdown).matchAll(/^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)/gm)) found.push(match[1]!);
  return found.filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

describe('the documentation links', () => {
  const all = pages();

  it('finds the pages it checks', () => {
    for (const page of [
      'README.md',
      'docs/design.md',
      'jobs/README.md',
      'terraform/README.md',
      'workflows/README.md',
    ]) {
      assert.ok(all.includes(page), `${page} is not checked`);
    }
  });

  for (const page of all) {
    it(`${page}: every relative link and anchor exists`, () => {
      const problems: string[] = [];
      for (const target of links(readFileSync(join(root, page), 'utf8'))) {
        const [path = '', fragment] = target.split('#', 2);
        const file = path === '' ? join(root, page) : join(root, dirname(page), decodeURIComponent(path));
        if (!existsSync(file)) {
          problems.push(`${target}: no ${relative(root, file)}`);
          continue;
        }
        if (fragment === undefined) continue;
        if (statSync(file).isDirectory() || !file.endsWith('.md')) {
          problems.push(`${target}: an anchor into something that is not a markdown page`);
        } else if (!anchors(readFileSync(file, 'utf8')).has(fragment)) {
          problems.push(`${target}: no heading #${fragment} in ${relative(root, file)}`);
        }
      }
      assert.deepEqual(problems, []);
    });
  }
});
