/**
 * Reads a COLMAP sparse model (`cameras`, `images`, `points3D`, binary `.bin` or text `.txt`)
 * into plain objects. Only what later stages and the quality gate need is kept: 2D keypoints
 * are counted, not stored, so a model with millions of observations stays small in memory.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Camera {
  id: number;
  model: string;
  width: number;
  height: number;
  params: number[];
}

export interface Image {
  id: number;
  /** World-to-camera rotation as a unit quaternion (w, x, y, z), COLMAP's convention. */
  qvec: [number, number, number, number];
  /** World-to-camera translation. */
  tvec: [number, number, number];
  cameraId: number;
  name: string;
  /** Keypoints of this image that belong to a triangulated 3D point. */
  observations: number;
}

export interface Point3D {
  id: number;
  xyz: [number, number, number];
  rgb: [number, number, number];
  /** Mean reprojection error of the point over its track, in pixels. */
  error: number;
  trackLength: number;
}

export interface SparseModel {
  cameras: Camera[];
  images: Image[];
  points: Point3D[];
}

/** COLMAP's camera model ids (src/base/camera_models.h) with their parameter counts. */
const CAMERA_MODELS: readonly { name: string; params: number }[] = [
  { name: 'SIMPLE_PINHOLE', params: 3 },
  { name: 'PINHOLE', params: 4 },
  { name: 'SIMPLE_RADIAL', params: 4 },
  { name: 'RADIAL', params: 5 },
  { name: 'OPENCV', params: 8 },
  { name: 'OPENCV_FISHEYE', params: 8 },
  { name: 'FULL_OPENCV', params: 12 },
  { name: 'FOV', params: 5 },
  { name: 'SIMPLE_RADIAL_FISHEYE', params: 4 },
  { name: 'RADIAL_FISHEYE', params: 5 },
  { name: 'THIN_PRISM_FISHEYE', params: 12 },
];

export class ModelFormatError extends Error {
  override name = 'ModelFormatError';
}

/** A little-endian cursor that refuses to read past the end (a truncated file is an error, not garbage). */
class Cursor {
  private offset = 0;
  constructor(
    private readonly buffer: Buffer,
    private readonly file: string,
  ) {}
  private take(bytes: number): number {
    if (this.offset + bytes > this.buffer.length) throw new ModelFormatError(`${this.file} is truncated`);
    const at = this.offset;
    this.offset += bytes;
    return at;
  }
  u8 = (): number => this.buffer.readUInt8(this.take(1));
  i32 = (): number => this.buffer.readInt32LE(this.take(4));
  u32 = (): number => this.buffer.readUInt32LE(this.take(4));
  u64 = (): number => Number(this.buffer.readBigUInt64LE(this.take(8)));
  i64 = (): bigint => this.buffer.readBigInt64LE(this.take(8));
  f64 = (): number => this.buffer.readDoubleLE(this.take(8));
  skip = (bytes: number): void => void this.take(bytes);
  cstring(): string {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) throw new ModelFormatError(`${this.file} is truncated`);
    const text = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return text;
  }
  done(): void {
    if (this.offset !== this.buffer.length) throw new ModelFormatError(`${this.file} has trailing bytes`);
  }
}

function modelOf(id: number, file: string): { name: string; params: number } {
  const model = CAMERA_MODELS[id];
  if (!model) throw new ModelFormatError(`${file}: unknown camera model id ${id}`);
  return model;
}

export function parseCamerasBin(buffer: Buffer, file = 'cameras.bin'): Camera[] {
  const c = new Cursor(buffer, file);
  const cameras: Camera[] = [];
  for (let n = c.u64(); n > 0; n--) {
    const id = c.u32();
    const model = modelOf(c.i32(), file);
    const width = c.u64();
    const height = c.u64();
    const params = Array.from({ length: model.params }, () => c.f64());
    cameras.push({ id, model: model.name, width, height, params });
  }
  c.done();
  return cameras;
}

export function parseImagesBin(buffer: Buffer, file = 'images.bin'): Image[] {
  const c = new Cursor(buffer, file);
  const images: Image[] = [];
  for (let n = c.u64(); n > 0; n--) {
    const id = c.u32();
    const qvec: Image['qvec'] = [c.f64(), c.f64(), c.f64(), c.f64()];
    const tvec: Image['tvec'] = [c.f64(), c.f64(), c.f64()];
    const cameraId = c.u32();
    const name = c.cstring();
    let observations = 0;
    for (let k = c.u64(); k > 0; k--) {
      c.skip(16); // x, y
      if (c.i64() !== -1n) observations++;
    }
    images.push({ id, qvec, tvec, cameraId, name, observations });
  }
  c.done();
  return images;
}

export function parsePointsBin(buffer: Buffer, file = 'points3D.bin'): Point3D[] {
  const c = new Cursor(buffer, file);
  const points: Point3D[] = [];
  for (let n = c.u64(); n > 0; n--) {
    const id = c.u64();
    const xyz: Point3D['xyz'] = [c.f64(), c.f64(), c.f64()];
    const rgb: Point3D['rgb'] = [c.u8(), c.u8(), c.u8()];
    const error = c.f64();
    const trackLength = c.u64();
    c.skip(8 * trackLength); // (image_id, point2D_idx) pairs
    points.push({ id, xyz, rgb, error, trackLength });
  }
  c.done();
  return points;
}

/** Non-comment, non-empty lines of a COLMAP text file, split on whitespace. */
function rows(text: string): string[][] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split(/\s+/));
}

function numbers(fields: string[], file: string): number[] {
  return fields.map((field) => {
    const value = Number(field);
    if (!Number.isFinite(value)) throw new ModelFormatError(`${file}: "${field}" is not a number`);
    return value;
  });
}

export function parseCamerasTxt(text: string, file = 'cameras.txt'): Camera[] {
  return rows(text).map(([id, model, width, height, ...params]) => {
    const known = CAMERA_MODELS.find((m) => m.name === model);
    if (!known || params.length !== known.params) throw new ModelFormatError(`${file}: bad camera ${id ?? ''}`);
    const [i, w, h] = numbers([id ?? '', width ?? '', height ?? ''], file) as [number, number, number];
    return { id: i, model: known.name, width: w, height: h, params: numbers(params, file) };
  });
}

export function parseImagesTxt(text: string, file = 'images.txt'): Image[] {
  // Two lines per image, and the second (its keypoints) may be empty, so empty lines count here.
  const lines = text.split('\n').filter((line) => !line.startsWith('#'));
  const images: Image[] = [];
  for (let i = 0; i < lines.length; i += 2) {
    const header = (lines[i] ?? '').trim();
    if (header === '') continue;
    const fields = header.split(/\s+/);
    if (fields.length < 10) throw new ModelFormatError(`${file}: bad image line "${header}"`);
    const [id, qw, qx, qy, qz, tx, ty, tz, cameraId] = numbers(fields.slice(0, 9), file);
    const keypoints = (lines[i + 1] ?? '').trim().split(/\s+/).filter(Boolean);
    let observations = 0;
    for (let k = 2; k < keypoints.length; k += 3) if (keypoints[k] !== '-1') observations++;
    images.push({
      id: id!,
      qvec: [qw!, qx!, qy!, qz!],
      tvec: [tx!, ty!, tz!],
      cameraId: cameraId!,
      name: fields.slice(9).join(' '),
      observations,
    });
  }
  return images;
}

export function parsePointsTxt(text: string, file = 'points3D.txt'): Point3D[] {
  return rows(text).map((fields) => {
    const [id, x, y, z, r, g, b, error] = numbers(fields.slice(0, 8), file);
    const track = fields.length - 8;
    if (fields.length < 8 || track % 2 !== 0) throw new ModelFormatError(`${file}: bad point line`);
    return { id: id!, xyz: [x!, y!, z!], rgb: [r!, g!, b!], error: error!, trackLength: track / 2 };
  });
}

/** Reads the model in `dir`, binary when `cameras.bin` exists, else text. */
export async function readSparseModel(dir: string): Promise<SparseModel> {
  if (existsSync(join(dir, 'cameras.bin'))) {
    const [cameras, images, points] = await Promise.all(
      ['cameras.bin', 'images.bin', 'points3D.bin'].map((name) => readFile(join(dir, name))),
    );
    return {
      cameras: parseCamerasBin(cameras!),
      images: parseImagesBin(images!),
      points: parsePointsBin(points!),
    };
  }
  if (existsSync(join(dir, 'cameras.txt'))) {
    const [cameras, images, points] = await Promise.all(
      ['cameras.txt', 'images.txt', 'points3D.txt'].map((name) => readFile(join(dir, name), 'utf8')),
    );
    return {
      cameras: parseCamerasTxt(cameras!),
      images: parseImagesTxt(images!),
      points: parsePointsTxt(points!),
    };
  }
  throw new ModelFormatError(`no COLMAP model (cameras.bin or cameras.txt) in ${dir}`);
}
