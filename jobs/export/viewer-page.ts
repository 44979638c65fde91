/**
 * The viewer page the export stage writes: the bundled viewer (viewer/main.ts, built by `npm run
 * build` into dist/viewer/) and the request's data (viewer-data.ts) inlined into one HTML file, so
 * that one signed URL opens it and nothing is fetched from anywhere but the request's own files.
 */
import { readFile } from 'node:fs/promises';
import type { ViewerData } from './viewer-data.js';

const BUILT = new URL('../../viewer/', import.meta.url);

/** JSON safe inside a <script> element: no `<` can close it or open a comment. */
const scriptJson = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');

export async function viewerPage(data: ViewerData): Promise<string> {
  const [template, script] = await Promise.all([
    readFile(new URL('index.html', BUILT), 'utf8'),
    readFile(new URL('viewer.js', BUILT), 'utf8'),
  ]);
  // esbuild writes `<\/script` inside strings; anything else would end the inline script early.
  if (/<\/script|<!--/i.test(script)) throw new Error('the viewer bundle cannot be inlined: it holds </script or <!--');
  return template
    .replace('<!-- splatflow:data -->', () => `<script type="application/json" id="data">${scriptJson(data)}</script>`)
    .replace('<!-- splatflow:script -->', () => `<script type="module">${script}</script>`);
}
