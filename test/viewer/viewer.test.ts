/**
 * The viewer as a user meets it: `npm run reconstruct -- VIDEO --view` on the watch clip (a short
 * schedule), then the printed URL opened in headless Chromium (Debian's, SwiftShader WebGL). The page
 * must load the real splat with no request leaving the machine and no console error, start from the
 * training camera whose image it resembles, move when dragged, and show report.json's figures.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import type { CameraEntry } from '../../jobs/export/cameras-json.js';
import type { Report } from '../../jobs/export/report.js';
import { launchChromium } from '../support/chromium.js';
import { sharedData } from '../support/data.js';
import { similarity } from '../support/image-similarity.js';

const COMMAND = fileURLToPath(new URL('../../local/reconstruct.js', import.meta.url));
/** The panel's width (viewer/index.html), so the canvas gets the training image's aspect. */
const PANEL = 369;
const HEIGHT = 640;

let work: string;
let child: ChildProcess;
let output = '';
let browser: Browser;
let page: Page;
let url: URL;
let folder: string;
let report: Report;
let start: CameraEntry;
let cameras: CameraEntry[];
const problems: string[] = [];
const offsite: string[] = [];

/** The canvas as the user sees it, PNG. */
const canvasShot = () => page.locator('#canvas').screenshot();

async function settle(): Promise<void> {
  // Spark sorts splats in a worker after each move: a few frames before the picture is final.
  await page.waitForTimeout(1500);
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'splatflow-viewer-'));
  const video = sharedData('watch', 'watch_orbit.mp4');
  child = spawn(process.execPath, [COMMAND, video, '--out', work, '--iterations', '300', '--view'], {
    env: { ...process.env, METADATA_SERVER_DETECTION: 'none', SPLATFLOW_DEPTH_MODEL_URI: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const printed = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = /^viewer: (http:\/\/127\.0\.0\.1:\d+\/\S+) \(serving until Ctrl-C\)$/m.exec(output);
      if (line) resolve(line[1]!);
    });
    child.on('exit', (code) => reject(new Error(`reconstruct exited ${code} before serving:\n${output}`)));
  });
  url = new URL(printed);
  folder = /outputs:[\s\S]*?report: +(\S+)\/export\/report\.json/.exec(output)![1]!;
  report = JSON.parse(await readFile(join(folder, 'export', 'report.json'), 'utf8')) as Report;
  cameras = JSON.parse(await readFile(join(folder, 'export', 'cameras.json'), 'utf8')) as CameraEntry[];
  const name = report.renders.thumbnail.camera.replace(/\.[^.]+$/, '');
  start = cameras.find((c) => c.img_name === name)!;

  browser = await launchChromium();
  const width = Math.round((HEIGHT * start.width) / start.height) + PANEL;
  page = await browser.newPage({ viewport: { width, height: HEIGHT } });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page: ${error.message}`));
  // Offline by construction: anything but this loopback server is refused and recorded.
  await page.route('**/*', (route) => {
    const target = new URL(route.request().url());
    if (target.protocol === 'data:' || target.protocol === 'blob:' || target.host === url.host) {
      return route.continue();
    }
    offsite.push(target.href);
    return route.abort();
  });
  await page.goto(url.href);
  await page.waitForSelector('body[data-state="ready"], #status.error', { timeout: 120_000 });
  await settle();
});

after(async () => {
  await browser?.close();
  if (child && child.exitCode === null) child.kill('SIGINT');
  await rm(work, { recursive: true, force: true });
});

describe('the viewer page of a reconstructed clip (npm run reconstruct -- --view)', () => {
  it('loads the splat with no console error and nothing fetched from off this machine', async () => {
    assert.equal(
      await page.getAttribute('body', 'data-state'),
      'ready',
      (await page.locator('#status').textContent()) ?? '',
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(offsite, []);
  });

  it('shows a picture, not a blank canvas', async () => {
    const { channels } = await sharp(await canvasShot()).stats();
    const spread = Math.max(...channels.slice(0, 3).map((c) => c.stdev));
    const brightness = channels.slice(0, 3).reduce((sum, c) => sum + c.mean, 0) / 3;
    assert.ok(spread > 20 && brightness > 20, `stdev ${spread.toFixed(1)}, mean ${brightness.toFixed(1)}`);
  });

  it('starts at the thumbnail camera, drawn as the trainer drew it, and resembling that training image', async (t) => {
    assert.equal(await page.locator('#camera').inputValue(), start.img_name);
    const frame = await canvasShot();
    // The trainer's own render through the same camera (jobs/train/renders.py): Spark must show the same picture.
    const asTrained = await similarity(frame, join(folder, report.renders.thumbnail.file));
    // Against every training image: the start camera's own is among the closest few (neighbours look alike).
    const images = join(folder, 'sfm', 'undistorted', 'images');
    const scores = await Promise.all(
      cameras.map(async (c) => ({
        name: c.img_name,
        score: await similarity(frame, join(images, `${c.img_name}.jpg`)),
      })),
    );
    scores.sort((a, b) => b.score - a.score);
    const rank = scores.findIndex((s) => s.name === start.img_name) + 1;
    const own = scores[rank - 1]!.score;
    t.diagnostic(
      `vs the trainer's render ${asTrained.toFixed(3)}; vs ${start.img_name} ${own.toFixed(3)}, rank ${rank} of ${scores.length}; best ${scores[0]!.name} ${scores[0]!.score.toFixed(3)}, worst ${scores.at(-1)!.score.toFixed(3)}`,
    );
    // Measured 2026-12-08 (COLMAP 4's global mapper, 41 cameras), 300 steps: 0.85, 0.88 and, in a clean-clone CI
    // run, 0.54 against the trainer's render; 0.55, 0.59, 0.22 against its own image; rank 1 of 41 each time (the
    // worst image -0.19 to 0.03). At 150 steps: 0.55-0.69, 0.21-0.36, rank 1-4. Why one run drew so differently is
    // not known yet (Spark still loading at the screenshot is a suspect): the floors sit below every run seen.
    assert.ok(asTrained > 0.45, `the first frame is the trainer's view: ${asTrained.toFixed(3)}`);
    assert.ok(own > 0.15, `it resembles ${start.img_name}: ${own.toFixed(3)}`);
    assert.ok(rank <= 5, `${start.img_name} is among the 5 training images it resembles most (rank ${rank})`);
  });

  it('a drag across the canvas turns the view', async () => {
    const before = await canvasShot();
    const box = (await page.locator('#canvas').boundingBox())!;
    const [x, y] = [box.x + box.width / 2, box.y + box.height / 2];
    await page.mouse.move(x, y);
    await page.mouse.down();
    for (let i = 1; i <= 10; i++) await page.mouse.move(x + i * 15, y + i * 3);
    await page.mouse.up();
    await settle();
    const moved = await similarity(before, await canvasShot());
    assert.ok(moved < 0.9, `the view changed: similarity ${moved.toFixed(3)} to the one before`);
    assert.deepEqual(problems, []);
  });

  it("shows report.json's figures in the report panel", async () => {
    const figure = async (name: string) =>
      (await page.locator(`[data-figure="${name}"]`).textContent())?.replaceAll(',', '');
    const metric = (stage: string, path: string) =>
      path
        .split('.')
        .reduce<unknown>(
          (v, key) => (v as Record<string, unknown>)[key],
          report.stages.find((s) => s.stage === stage)!.metrics,
        ) as number;
    assert.equal(await figure('frames'), String(metric('frames', 'count')));
    assert.equal(await figure('chosen'), String(metric('filter', 'count_kept')));
    assert.equal(
      await figure('registered'),
      `${metric('sfm', 'images_registered')} of ${metric('sfm', 'images_input')}`,
    );
    assert.equal(await figure('gaussians'), String(metric('train', 'gaussians')));
    assert.equal(await figure('psnr'), metric('train', 'quality.test.psnr').toFixed(2));
    assert.equal(await figure('ssim'), metric('train', 'quality.test.ssim').toFixed(3));
    assert.equal(await figure('mesh-psnr'), metric('mesh', 'quality.mesh.psnr').toFixed(2));
    assert.equal(await figure('mesh-covered'), `${(100 * metric('mesh', 'quality.mesh.covered')).toFixed(0)} %`);
    for (const stage of report.stages) assert.ok(await figure(`stage-${stage.stage}`), stage.stage);
    assert.equal(await page.locator('#panel figure img').count(), report.renders.heldout.length);
    assert.ok(report.renders.heldout.length > 0);
    const sog = await figure('export/scene.sog');
    assert.match(sog ?? '', /^\d+ kB$/);
    assert.equal(sog, `${(report.files['export/scene.sog']!.bytes / 1e3).toFixed(0)} kB`);
  });

  it('the command keeps serving until Ctrl-C, then exits 0', async () => {
    assert.equal(child.exitCode, null);
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGINT');
    assert.equal(await exited, 0);
  });
});
