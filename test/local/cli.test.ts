/**
 * `splatflow` (the package's bin) as a user runs it, against the local stack: real Functions Framework
 * servers (trigger, status, onUpload, dispatch, queue), the real workflow and the local storage API; the
 * stage jobs are the contract-honouring test program, so a request takes seconds. submit → watch →
 * download through the trigger and through an upload, a failure's stage and cause, and bad arguments.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../lib/log.js';
import { testStageDefinitions } from '../support/stage-definitions.js';
import { startStack, type Stack } from '../../local/stack.js';
import { changeLine, outcomeLine, progressBar } from '../../local/cli/progress.js';
import { audienceOf } from '../../local/cli/client.js';

const CLI = fileURLToPath(new URL('../../local/cli.js', import.meta.url));
const BUCKET = 'splatflow-local';

let work: string;
let stack: Stack;
let video: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'splatflow-cli-'));
  video = join(work, 'walk.mp4');
  await writeFile(video, 'a video, as far as the functions can tell');
  const definitions = testStageDefinitions();

  stack = await startStack({
    data: join(work, 'stack'),
    bucket: BUCKET,
    apiPort: 0,
    log: createLogger({ level: 'ERROR' }),
    definitions,
  });
});
after(async () => {
  await stack?.stop();
  await rm(work, { recursive: true, force: true });
});

/** Runs `splatflow ARGS` in a process of its own (stdout is a pipe: plain lines, no progress bar). */
function splatflow(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, METADATA_SERVER_DETECTION: 'none' };
  // The CLI is pointed at the stack's storage by --storage-api, as a user does, not by this process's setting.
  delete env.STORAGE_EMULATOR_HOST;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const jsonLines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((text) => JSON.parse(text) as Record<string, unknown>);

describe('splatflow against the local stack', () => {
  it('submits a local file through the trigger, watches it to COMPLETED and downloads the results', async () => {
    const storage = ['--storage-api', stack.urls.api];
    const submitted = await splatflow([
      'submit',
      video,
      '--trigger',
      `${stack.urls.functions.trigger}/trigger-reconstruction`,
      '--upload-to',
      `gs://${BUCKET}/inputs/cli/`,
      '--session',
      'cli-test',
      '--json',
      ...storage,
    ]);
    assert.equal(submitted.code, 0, submitted.stderr);
    const [answer] = jsonLines(submitted.stdout) as Array<{ request_id: string; status: string; input_uri: string }>;
    assert.equal(answer!.input_uri, `gs://${BUCKET}/inputs/cli/walk.mp4`);
    assert.match(answer!.status, /\/status\?callback_token=/);

    const watched = await splatflow(['watch', answer!.status, '--interval', '0.1', '--json']);
    assert.equal(watched.code, 0, watched.stderr);
    const changes = jsonLines(watched.stdout);
    assert.equal(changes.at(-1)?.status, 'COMPLETED');
    assert.ok(changes.every((change) => change.request_id === answer!.request_id));

    const plain = await splatflow(['watch', answer!.status]);
    assert.equal(plain.code, 0);
    assert.match(plain.stdout, /^\[0:00\] COMPLETED export 100%\nCOMPLETED [0-9a-f-]{36}\n$/);

    const out = join(work, 'results');
    const downloaded = await splatflow(['download', answer!.status, '--out', out, '--json']);
    assert.equal(downloaded.code, 0, downloaded.stderr);
    const files = jsonLines(downloaded.stdout) as Array<{ name: string; path: string; bytes: number }>;
    assert.deepEqual(files.map((file) => file.name).sort(), [
      'mesh_glb',
      'mesh_ply',
      'report',
      'splat_ply',
      'splat_spz',
      'viewer',
    ]);
    const report = await readFile(join(out, 'export', 'report.json'), 'utf8');
    assert.equal(report, `export/report.json of ${answer!.request_id}\n`, 'the bytes the stage wrote');
  });

  it('follows a request started by an upload alone, through its status object', async () => {
    const storage = ['--storage-api', stack.urls.api];
    const run = await splatflow([
      'submit',
      video,
      '--upload-to',
      `gs://${BUCKET}/uploads/kitchen/`,
      '--watch',
      '--interval',
      '0.1',
      ...storage,
    ]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const object = `gs://${BUCKET}/status/uploads/kitchen/walk.mp4.json`;
    assert.ok(run.stdout.includes(`status object ${object}\n`), run.stdout);
    assert.match(run.stdout, /\nCOMPLETED [0-9a-f-]{36}\n$/);

    const out = join(work, 'from-upload');
    const downloaded = await splatflow(['download', object, '--out', out, ...storage]);
    assert.equal(downloaded.code, 0, downloaded.stderr);
    assert.match(await readFile(join(out, 'train', 'point_cloud.ply'), 'utf8'), /^train\/point_cloud\.ply of /);
  });

  it('exits 1 with the failing stage and its cause', async () => {
    const run = await splatflow([
      'submit',
      `gs://${BUCKET}/inputs/cli/walk.mp4`,
      '--trigger',
      `${stack.urls.functions.trigger}/trigger-reconstruction`,
      '--params',
      '{"sfm":{"fail":"the clip is too dark"}}',
      '--watch',
      '--interval',
      '0.1',
    ]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stdout, /\nFAILED at sfm: the clip is too dark\n$/);

    const early = await splatflow(['download', run.stdout.match(/^status (\S+)$/m)![1]!, '--out', join(work, 'none')]);
    assert.equal(early.code, 1);
    assert.match(early.stderr, /the request is FAILED: nothing to download/);
  });

  it('exits 2 on bad arguments, saying what is wrong', async () => {
    const missing = await splatflow([
      'submit',
      join(work, 'none.mp4'),
      '--trigger',
      'http://127.0.0.1:1/',
      '--upload-to',
      `gs://${BUCKET}/x/`,
    ]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no file at .*none\.mp4/);
    const noFolder = await splatflow(['submit', video, '--trigger', 'http://127.0.0.1:1/']);
    assert.equal(noFolder.code, 2);
    assert.match(noFolder.stderr, /a local file needs --upload-to/);
    const unknown = await splatflow(['watch', 'x', '--bogus']);
    assert.equal(unknown.code, 2);
    assert.equal((await splatflow(['frobnicate', 'x'])).code, 2);
  });
});

describe('splatflow output', () => {
  it('draws a bar to the terminal width, and a plain line only when something changed', () => {
    const status = { status: 'PROCESSING', stage: 'train', progress: 0.5 };
    const bar = progressBar(status, '1:05', 60);
    assert.ok(bar.length < 60);
    assert.match(bar, /^\[#+-+\] {2}50% train {2}\(PROCESSING, 1:05\)$/);
    assert.equal(bar.split('#').length - 1, bar.split('-').length - 1, 'half filled');
    assert.equal(changeLine(status, { ...status }, '1:06'), undefined);
    assert.equal(changeLine({ ...status, progress: 0.6 }, status, '1:06'), '[1:06] PROCESSING train 60%');
    assert.equal(
      outcomeLine({ status: 'REJECTED', error: { message: 'object is empty' } }),
      'REJECTED: object is empty',
    );
  });

  it('asks for ID tokens for the function, not the route', () => {
    assert.equal(
      audienceOf('https://europe-west1-p.cloudfunctions.net/splatflow-trigger/trigger-reconstruction'),
      'https://europe-west1-p.cloudfunctions.net/splatflow-trigger',
    );
    assert.equal(
      audienceOf('https://splatflow-status-abc-ew.a.run.app/status?x=1'),
      'https://splatflow-status-abc-ew.a.run.app',
    );
  });
});

describe('splatflow against a hostile answer', () => {
  let server: Server;
  let base: string;
  /** path → the answer's JSON text (raw: `__proto__` stays an own key, as a server would send it). */
  const answers = new Map<string, string>();
  before(async () => {
    server = createServer((req, res) => {
      const body = answers.get(new URL(req.url ?? '/', 'http://x').pathname);
      res.writeHead(body === undefined ? 404 : req.url?.includes('refuse') ? 400 : 200, {
        'content-type': 'application/json',
      });
      res.end(body ?? '{"error":{"code":"NOT_FOUND","message":"no"}}');
    });
    await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((done) => server.close(() => done())));

  // Retitle the window (OSC 0 … BEL), clear the screen (CSI 2J, and C1's one-byte CSI), a hidden OSC 8 link.
  const hostile =
    '\u001b]0;pwned\u0007 \u001b[2J \u009b2J \u001b]8;;https://evil.example/\u001b\\click\u001b]8;;\u001b\\';
  // eslint-disable-next-line no-control-regex -- what must not reach the terminal
  const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

  it('prints no control character an answer carries: watch, its JSON lines, and a refusal', async () => {
    answers.set(
      '/failed',
      JSON.stringify({ status: 'FAILED', stage: `train${hostile}`, error: { stage: 'train', message: hostile } }),
    );
    answers.set('/refuse', JSON.stringify({ error: { code: 'BAD', message: hostile } }));
    for (const args of [
      ['watch', `${base}/failed`],
      ['watch', `${base}/failed`, '--json'],
      ['watch', `${base}/refuse`],
    ]) {
      const run = await splatflow(args);
      assert.equal(run.code, 1, args.join(' '));
      const printed = run.stdout + run.stderr;
      assert.doesNotMatch(printed, CONTROL, `${args.join(' ')}: ${JSON.stringify(printed)}`);
      assert.match(printed, /\\u001b\]0;pwned\\u0007/, 'shown, escaped');
    }
    const json = await splatflow(['watch', `${base}/failed`, '--json']);
    assert.equal(
      (JSON.parse(json.stdout.trim()) as { error: { message: string } }).error.message,
      hostile,
      'the JSON line still parses to the answer',
    );
  });

  it('refuses result lists that are not its own result names or have no URL, writing nothing', async () => {
    const out = join(work, 'hostile', 'out');
    for (const files of [
      '{"constructor":{"url":"http://127.0.0.1:1/x"}}',
      '{"__proto__":{"url":"http://127.0.0.1:1/x"}}',
      '{"toString":{"url":"http://127.0.0.1:1/x"}}',
      '{"report":null}',
      '{"report":{"url":42}}',
      '"report"',
      'null',
    ]) {
      answers.set('/done', `{"status":"COMPLETED","files":${files}}`);
      const run = await splatflow(['download', `${base}/done`, '--out', out]);
      assert.equal(run.code, 1, files);
      assert.match(
        run.stderr,
        /^splatflow: the status answer( lists no result files|'s "report" has no http\(s\) URL|'s "files" is not an object)/,
        `${files}: ${run.stderr}`,
      );
    }
    answers.set('/null', 'null');
    assert.match((await splatflow(['download', `${base}/null`, '--out', out])).stderr, /not a request status/);
    assert.deepEqual(await readdir(join(work, 'hostile')).catch(() => []), [], 'nothing written');
  });
});
