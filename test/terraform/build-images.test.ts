/**
 * terraform/build-images.sh, run for real (dry: the gcloud commands are printed, not run) on a
 * scratch copy of the repository: it must build every image of jobs/definitions.json from its
 * Dockerfile and print a Terraform `images` variable that parses and names them all.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseHcl } from '../support/terraform.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..', '..');

describe('build-images.sh', () => {
  let scratch: string;
  let images: Record<string, { dockerfile: string }>;

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'splatflow-images-'));
    await mkdir(join(scratch, 'terraform'));
    await mkdir(join(scratch, 'jobs'));
    for (const file of ['terraform/build-images.sh', 'jobs/definitions.json']) {
      await cp(join(root, file), join(scratch, file));
    }
    images = (
      JSON.parse(await readFile(join(root, 'jobs', 'definitions.json'), 'utf8')) as typeof images & {
        images: typeof images;
      }
    ).images;
    for (const { dockerfile } of Object.values(images)) {
      await mkdir(join(scratch, dirname(dockerfile)), { recursive: true });
      await writeFile(join(scratch, dockerfile), 'FROM scratch\n');
    }
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  const script = () => join(scratch, 'terraform', 'build-images.sh');
  const pins = { DEPTH_MODEL_SHA256: 'a'.repeat(64), VOCAB_TREE_SHA256: 'b'.repeat(64) };

  it('builds every image from its Dockerfile and prints the images variable', async () => {
    const { stdout, stderr } = await run(script(), ['my-project', 'europe-west4', 'sf'], {
      env: { ...process.env, ...pins, DRY_RUN: '1' },
    });
    const parsed = (await parseHcl('images.auto.tfvars', stdout)) as { images: Record<string, string> };
    assert.deepEqual(Object.keys(parsed.images).sort(), Object.keys(images).sort());
    for (const [name, tag] of Object.entries(parsed.images)) {
      assert.match(tag, new RegExp(`^europe-west4-docker\\.pkg\\.dev/my-project/sf/${name}:[\\w-]+$`));
      const build = stderr.split('\n').find((line) => line.includes(`_TAG=${tag}`));
      assert.ok(build, `no build for ${name}`);
      assert.ok(build.startsWith('gcloud builds submit . --project my-project --region europe-west4'));
      assert.ok(build.includes(`_DOCKERFILE=${images[name]?.dockerfile}`), build);
      // The functions' .gcloudignore leaves out jobs/; image builds must upload it.
      assert.ok(build.includes('--ignore-file terraform/images.gcloudignore'), build);
      assert.ok(build.includes('serviceAccounts/sf-build@my-project.iam.gserviceaccount.com'), build);
      // The pinned sha256 of each file an image downloads, for cloudbuild.images.yaml's --build-arg.
      assert.ok(build.includes(`_DEPTH_MODEL_SHA256=${pins.DEPTH_MODEL_SHA256}`), build);
      assert.ok(build.includes(`_VOCAB_TREE_SHA256=${pins.VOCAB_TREE_SHA256}`), build);
    }
  });

  it('stops before any build when a pinned sha256 is not set, naming it', async () => {
    const failed = await run(script(), ['my-project'], {
      env: { ...process.env, DEPTH_MODEL_SHA256: pins.DEPTH_MODEL_SHA256, VOCAB_TREE_SHA256: '', DRY_RUN: '1' },
    }).then(
      () => assert.fail('expected a failure'),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    assert.notEqual(failed.code, 0);
    assert.equal(failed.stdout, '');
    assert.equal(
      failed.stderr.trim(),
      'build-images.sh: VOCAB_TREE_SHA256 is not set (the sha256 its Dockerfile in jobs/images/ pins)',
    );
  });

  it('stops with the missing Dockerfile named, printing no variable', async () => {
    const [name, image] = Object.entries(images)[0] ?? [];
    assert.ok(name && image);
    await rm(join(scratch, image.dockerfile));
    const failed = await run(script(), ['my-project'], { env: { ...process.env, ...pins, DRY_RUN: '1' } }).then(
      () => assert.fail('expected a failure'),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    assert.notEqual(failed.code, 0);
    assert.equal(failed.stdout, '');
    assert.equal(failed.stderr.trim(), `build-images.sh: ${image.dockerfile} (image ${name}) does not exist`);
  });

  it('asks for the project when none is given', async () => {
    const failed = await run(script(), []).then(
      () => assert.fail('expected a failure'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.notEqual(failed.code, 0);
    assert.match(failed.stderr, /usage: build-images\.sh PROJECT_ID/);
  });
});
