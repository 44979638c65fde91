/**
 * The viewer page (bundled by esbuild into dist/viewer/viewer.js and inlined into each request's
 * `export/viewer/index.html`): the splat drawn by Spark on three.js, starting from a training
 * camera, orbit and fly controls, the mesh on request, and the request's report beside it.
 * File URLs: a `#PATH=URL` fragment parameter (signed URLs in the cloud), else PATH relative to the
 * request folder the page is served from.
 */
import { SparkRenderer, SplatMesh } from '@sparkjsdev/spark';
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import type { CameraEntry } from '../jobs/export/cameras-json.js';
import type { Report } from '../jobs/export/report.js';
import type { ViewerData } from '../jobs/export/viewer-data.js';

const element = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const data = JSON.parse(element('data').textContent ?? '{}') as ViewerData;
const links = new URLSearchParams(location.hash.slice(1));
const fileUrl = (path: string): string => links.get(path) ?? new URL(`../../${path}`, location.href).href;

const status = element<HTMLDivElement>('status');
function fail(what: string, error: unknown): void {
  const message = `${what}: ${error instanceof Error ? error.message : String(error)}`;
  status.textContent = message;
  status.className = 'error';
  // eslint-disable-next-line no-console -- a page's errors belong in the browser's console
  console.error(message);
}

// ---- the report panel (text only through textContent: camera and file names come from the upload) ----

function node<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, attributes: Record<string, string> = {}) {
  const made = document.createElement(tag);
  if (text !== undefined) made.textContent = text;
  for (const [name, value] of Object.entries(attributes)) made.setAttribute(name, value);
  return made;
}

function table(rows: [label: string, value: string, figure?: string][]): HTMLTableElement {
  const t = node('table');
  for (const [label, value, figure] of rows) {
    const row = t.insertRow();
    row.append(node('td', label), node('td', value, figure ? { class: 'n', 'data-figure': figure } : { class: 'n' }));
  }
  return t;
}

const at = (value: unknown, path: string): unknown =>
  path.split('.').reduce<unknown>((v, key) => (v as Record<string, unknown> | undefined)?.[key], value);
const metric = (report: Report, stage: string, path: string): number | undefined => {
  const value = at(report.stages.find((s) => s.stage === stage)?.metrics, path);
  return typeof value === 'number' ? value : undefined;
};
const count = (n: number | undefined) => (n === undefined ? '–' : n.toLocaleString('en-US'));
const fixed = (n: number | undefined, digits: number) => (n === undefined ? '–' : n.toFixed(digits));
const percent = (n: number | undefined) => (n === undefined ? '–' : `${(100 * n).toFixed(0)} %`);
const bytes = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(0)} kB` : `${n} B`;
const seconds = (s: number) => (s >= 90 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${s.toFixed(1)} s`);

function showReport(report: Report): void {
  const panel = element('panel');
  panel.append(node('h1', 'Reconstruction'), node('div', report.request_id, { class: 'muted' }));
  const registered = metric(report, 'sfm', 'images_registered');
  const registeredOf = metric(report, 'sfm', 'images_input');
  panel.append(
    table([
      ['frames extracted', count(metric(report, 'frames', 'count')), 'frames'],
      ['frames chosen (filter)', count(metric(report, 'filter', 'count_kept')), 'chosen'],
      ['frames registered (sfm)', `${count(registered)} of ${count(registeredOf)}`, 'registered'],
      ['sparse points', count(metric(report, 'sfm', 'points')), 'points'],
      ['Gaussians', count(metric(report, 'train', 'gaussians')), 'gaussians'],
      ['training steps', count(metric(report, 'train', 'settings.iterations')), 'steps'],
      ['held-out PSNR (dB)', fixed(metric(report, 'train', 'quality.test.psnr'), 2), 'psnr'],
      ['held-out SSIM', fixed(metric(report, 'train', 'quality.test.ssim'), 3), 'ssim'],
      ['held-out views', count(metric(report, 'train', 'quality.test.views')), 'heldout'],
      ['mesh faces', count(metric(report, 'mesh', 'faces')), 'mesh-faces'],
      ['mesh held-out PSNR (dB)', fixed(metric(report, 'mesh', 'quality.mesh.psnr'), 2), 'mesh-psnr'],
      ['mesh held-out SSIM', fixed(metric(report, 'mesh', 'quality.mesh.ssim'), 3), 'mesh-ssim'],
      ['mesh pixels covered', percent(metric(report, 'mesh', 'quality.mesh.covered')), 'mesh-covered'],
    ]),
  );
  panel.append(node('h2', 'Stages'));
  panel.append(
    table([
      ...report.stages.map((s): [string, string, string] => [s.stage, seconds(s.duration_s), `stage-${s.stage}`]),
      ...report.skipped.map((name): [string, string] => [name, 'skipped']),
      ['compute', seconds(report.stages_duration_s), 'compute'],
      ['wall clock', seconds(report.wall_clock_s), 'wall'],
    ]),
  );
  panel.append(node('h2', 'Files'));
  panel.append(
    table(
      Object.entries(report.files).map(([path, file]): [string, string, string] => [path, bytes(file.bytes), path]),
    ),
  );
  if (data.heldout.length > 0) panel.append(node('h2', 'Held-out views: ground truth | render'));
  for (const view of data.heldout) {
    const figure = node('figure');
    figure.append(
      node('img', undefined, { src: view.image, alt: `${view.camera}: ground truth beside render` }),
      node('figcaption', `${view.camera}: PSNR ${view.psnr.toFixed(2)} dB, SSIM ${view.ssim.toFixed(3)}`),
    );
    panel.append(figure);
  }
}

// ---- the 3D view ----

/** A COLMAP camera (x right, y down, looking along +z) as three.js's (y up, looking along −z). */
function pose(c: CameraEntry) {
  const R = c.rotation; // camera to world: its columns are the camera's axes
  const column = (j: number) => new THREE.Vector3(R[0][j], R[1][j], R[2][j]);
  const basis = new THREE.Matrix4().makeBasis(column(0), column(1).negate(), column(2).negate());
  return {
    position: new THREE.Vector3(...c.position),
    quaternion: new THREE.Quaternion().setFromRotationMatrix(basis),
    forward: column(2),
    up: column(1).negate(),
    fov: THREE.MathUtils.radToDeg(2 * Math.atan(c.height / (2 * c.fy))),
  };
}

/** The point nearest every camera's optical axis (least squares): what an orbit capture looks at. */
function focus(cameras: CameraEntry[]): THREE.Vector3 | undefined {
  const A = new THREE.Matrix3().set(0, 0, 0, 0, 0, 0, 0, 0, 0);
  const b = new THREE.Vector3();
  for (const c of cameras) {
    const { position, forward } = pose(c);
    const d = forward.normalize();
    const P = new THREE.Matrix3().set(
      ...([0, 1, 2].flatMap((i) => [0, 1, 2].map((j) => (i === j ? 1 : 0) - d.getComponent(i) * d.getComponent(j))) as [
        number,
        number,
        number,
        number,
        number,
        number,
        number,
        number,
        number,
      ]),
    );
    for (let k = 0; k < 9; k++) A.elements[k]! += P.elements[k]!;
    b.add(position.clone().applyMatrix3(P));
  }
  return Math.abs(A.determinant()) > 1e-6 ? b.applyMatrix3(A.invert()) : undefined;
}

const canvas = element<HTMLCanvasElement>('canvas');
const renderer = new THREE.WebGLRenderer({ canvas, antialias: false });
renderer.setPixelRatio(Math.min(2, window.devicePixelRatio));
const scene = new THREE.Scene();
scene.background = new THREE.Color(0x000000);
const camera = new THREE.PerspectiveCamera(50, 1, 0.01, 1000);
scene.add(new SparkRenderer({ renderer }));
// Made anew for each training camera: OrbitControls fixes its orbit axis (camera.up) when constructed.
let controls = new OrbitControls(camera, canvas);

const centres = data.cameras.map((c) => new THREE.Vector3(...c.position));
const middle = centres.reduce((sum, p) => sum.add(p), new THREE.Vector3()).divideScalar(centres.length || 1);
const spread = Math.max(1e-3, ...centres.map((p) => p.distanceTo(middle)));
const looked = focus(data.cameras);
let orbitDistance = spread;

function resize(): void {
  const { clientWidth: w, clientHeight: h } = canvas;
  renderer.setSize(w, h, false);
  camera.aspect = w / Math.max(1, h);
  camera.updateProjectionMatrix();
}

/** Puts the view exactly where a training camera was, the orbit centre on its axis. */
function lookThrough(name: string): void {
  const entry = data.cameras.find((c) => c.img_name === name);
  if (!entry) return;
  const p = pose(entry);
  camera.up.copy(p.up); // so the orbit keeps this camera's roll: the first frame is the training view
  controls.dispose();
  controls = new OrbitControls(camera, canvas); // (it turns the camera to its default target: posed after)
  camera.position.copy(p.position);
  camera.quaternion.copy(p.quaternion);
  camera.fov = p.fov;
  camera.updateProjectionMatrix();
  orbitDistance = Math.max(0.05 * spread, looked ? looked.clone().sub(p.position).dot(p.forward) : spread);
  setMode(mode.value);
}

const mode = element<HTMLSelectElement>('mode');
function setMode(value: string): void {
  const forward = new THREE.Vector3(0, 0, -1).applyQuaternion(camera.quaternion);
  // Fly: orbiting a point just ahead of the camera turns it on the spot; the keys move it.
  const distance = value === 'fly' ? 1e-3 * spread : orbitDistance;
  controls.target.copy(camera.position).addScaledVector(forward, distance);
  controls.enableZoom = value !== 'fly';
  controls.rotateSpeed = value === 'fly' ? -0.3 : 1;
  controls.update();
}
mode.addEventListener('change', () => {
  if (mode.value === 'orbit') orbitDistance = Math.max(0.05 * spread, orbitDistance);
  setMode(mode.value);
  canvas.focus();
});

const held = new Set<string>();
window.addEventListener('keydown', (e) => held.add(e.key.toLowerCase()));
window.addEventListener('keyup', (e) => held.delete(e.key.toLowerCase()));
window.addEventListener('blur', () => held.clear());
const KEYS: Record<string, [number, number, number]> = {
  w: [0, 0, -1], s: [0, 0, 1], a: [-1, 0, 0], d: [1, 0, 0], q: [0, -1, 0], e: [0, 1, 0],
}; // prettier-ignore

const picker = element<HTMLSelectElement>('camera');
for (const c of data.cameras) picker.append(node('option', c.img_name, { value: c.img_name }));
picker.addEventListener('change', () => {
  lookThrough(picker.value);
  canvas.focus();
});

let last = performance.now();
renderer.setAnimationLoop((now) => {
  const dt = Math.min(0.1, (now - last) / 1000);
  last = now;
  const step = new THREE.Vector3();
  for (const key of held) if (KEYS[key]) step.add(new THREE.Vector3(...KEYS[key]));
  if (step.lengthSq() > 0 && document.activeElement?.tagName !== 'SELECT') {
    step.applyQuaternion(camera.quaternion).multiplyScalar(0.5 * spread * dt);
    camera.position.add(step);
    controls.target.add(step);
  }
  controls.update();
  renderer.render(scene, camera);
});

async function main(): Promise<void> {
  showReport(data.report);
  new ResizeObserver(resize).observe(canvas);
  resize();
  const start = data.start ?? data.cameras[Math.floor(data.cameras.length / 2)]?.img_name;
  if (start) {
    picker.value = start;
    lookThrough(start);
  } else {
    camera.position.set(0, 0, 5);
    setMode(mode.value);
  }

  // The type by the file's name: a signed URL's path ends with it, but its query string hides it from Spark.
  const splat = new SplatMesh({ url: fileUrl(data.report.viewer.scene), fileName: data.report.viewer.scene });
  scene.add(splat);
  await splat.initialized;

  const show = element<HTMLInputElement>('mesh');
  const meshUrl = data.report.viewer.mesh;
  show.disabled = !meshUrl;
  let mesh: Promise<THREE.Object3D> | undefined;
  show.addEventListener('change', () => {
    splat.visible = !show.checked;
    mesh ??= new GLTFLoader().loadAsync(fileUrl(meshUrl!)).then((gltf) => {
      // The photos' colours, shaded by the GLB's normals under a light at the eye so the surface's shape shows
      // (unlit vertex colours read as a flat picture); the sky light keeps faces turned from the eye readable.
      gltf.scene.traverse((o) => {
        if (o instanceof THREE.Mesh) o.material = new THREE.MeshLambertMaterial({ vertexColors: true });
      });
      scene.add(new THREE.HemisphereLight(0xffffff, 0x808080, 1.4));
      camera.add(new THREE.DirectionalLight(0xffffff, 1.4));
      scene.add(camera);
      scene.add(gltf.scene);
      return gltf.scene;
    });
    mesh.then((m) => (m.visible = show.checked)).catch((error: unknown) => fail('cannot load the mesh', error));
  });

  status.textContent = `${count(metric(data.report, 'export', 'splats'))} Gaussians`;
  document.body.dataset['state'] = 'ready';
}

main().catch((error: unknown) => fail('cannot show the splat', error));
