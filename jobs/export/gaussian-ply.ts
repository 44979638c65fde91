/**
 * Reads a 3D Gaussian Splatting `.ply` (binary little-endian, the layout of the reference
 * implementation and gsplat: x y z [nx ny nz] f_dc_0..2 f_rest_* opacity scale_0..2 rot_0..3)
 * into one Float32Array per property.
 */
import { readFile } from 'node:fs/promises';

export class PlyError extends Error {
  override name = 'PlyError';
}

export interface GaussianCloud {
  count: number;
  columns: Map<string, Float32Array>;
}

/** The properties every consumer of a splat needs; spherical-harmonic rest terms are optional. */
export const REQUIRED = [
  'x',
  'y',
  'z',
  'f_dc_0',
  'f_dc_1',
  'f_dc_2',
  'opacity',
  'scale_0',
  'scale_1',
  'scale_2',
  'rot_0',
  'rot_1',
  'rot_2',
  'rot_3',
] as const;

const TYPES: Record<string, { size: number; read: (b: Buffer, at: number) => number }> = {
  char: { size: 1, read: (b, at) => b.readInt8(at) },
  int8: { size: 1, read: (b, at) => b.readInt8(at) },
  uchar: { size: 1, read: (b, at) => b.readUInt8(at) },
  uint8: { size: 1, read: (b, at) => b.readUInt8(at) },
  short: { size: 2, read: (b, at) => b.readInt16LE(at) },
  int16: { size: 2, read: (b, at) => b.readInt16LE(at) },
  ushort: { size: 2, read: (b, at) => b.readUInt16LE(at) },
  uint16: { size: 2, read: (b, at) => b.readUInt16LE(at) },
  int: { size: 4, read: (b, at) => b.readInt32LE(at) },
  int32: { size: 4, read: (b, at) => b.readInt32LE(at) },
  uint: { size: 4, read: (b, at) => b.readUInt32LE(at) },
  uint32: { size: 4, read: (b, at) => b.readUInt32LE(at) },
  float: { size: 4, read: (b, at) => b.readFloatLE(at) },
  float32: { size: 4, read: (b, at) => b.readFloatLE(at) },
  double: { size: 8, read: (b, at) => b.readDoubleLE(at) },
  float64: { size: 8, read: (b, at) => b.readDoubleLE(at) },
};

export function parseGaussianPly(buffer: Buffer): GaussianCloud {
  const end = buffer.indexOf('end_header\n');
  if (buffer.subarray(0, 4).toString('latin1') !== 'ply\n' || end < 0) throw new PlyError('not a PLY file');
  const header = buffer.subarray(0, end).toString('latin1').split('\n');
  if (!header.includes('format binary_little_endian 1.0')) {
    throw new PlyError('only binary little-endian PLY is supported (as 3DGS trainers write it)');
  }
  let count = -1;
  const properties: { name: string; type: (typeof TYPES)[string] }[] = [];
  for (const line of header) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] === 'element') {
      if (count >= 0) break; // only the first element, the vertices, holds Gaussians
      if (fields[1] !== 'vertex') throw new PlyError('the first PLY element is not "vertex"');
      count = Number(fields[2]);
    } else if (fields[0] === 'property' && count >= 0) {
      const type = TYPES[fields[1] ?? ''];
      if (!type || fields.length !== 3) throw new PlyError(`unsupported PLY property "${line}"`);
      properties.push({ name: fields[2]!, type });
    }
  }
  if (!Number.isInteger(count) || count < 0) throw new PlyError('PLY has no vertex count');
  const missing = REQUIRED.filter((name) => !properties.some((p) => p.name === name));
  if (missing.length > 0) throw new PlyError(`not a Gaussian splat PLY: missing ${missing.join(', ')}`);

  const stride = properties.reduce((sum, p) => sum + p.type.size, 0);
  const body = buffer.subarray(end + 'end_header\n'.length);
  if (body.length < stride * count) throw new PlyError(`PLY is truncated: ${count} splats announced`);
  const columns = new Map(properties.map((p) => [p.name, new Float32Array(count)]));
  let offset = 0;
  for (const property of properties) {
    const column = columns.get(property.name)!;
    for (let i = 0, at = offset; i < count; i++, at += stride) column[i] = property.type.read(body, at);
    offset += property.type.size;
  }
  return { count, columns };
}

export async function readGaussianPly(path: string): Promise<GaussianCloud> {
  return parseGaussianPly(await readFile(path));
}

/** A required column (present by construction after parsing). */
export function column(cloud: GaussianCloud, name: (typeof REQUIRED)[number]): Float32Array {
  return cloud.columns.get(name)!;
}

export const SH_C0 = 0.28209479177387814;
export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
/** Base colour from the degree-0 spherical harmonic, 0..1. */
export const shToColor = (dc: number): number => Math.min(1, Math.max(0, 0.5 + SH_C0 * dc));
