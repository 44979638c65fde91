/** Synthetic 3DGS `.ply` files in the layout the train stage writes, for the export tests. */
export const PROPERTIES = [
  ...['x', 'y', 'z', 'nx', 'ny', 'nz', 'f_dc_0', 'f_dc_1', 'f_dc_2'],
  ...Array.from({ length: 45 }, (_, i) => `f_rest_${i}`),
  ...['opacity', 'scale_0', 'scale_1', 'scale_2', 'rot_0', 'rot_1', 'rot_2', 'rot_3'],
];
const SH_C0 = 0.28209479177387814;
/** f_dc for a base colour c in 0..1. */
const dc = (c: number) => (c - 0.5) / SH_C0;

export interface Splat {
  xyz: [number, number, number];
  rgb: [number, number, number];
  opacity: number;
  logScale: number;
}

/** A 3DGS .ply in the standard property layout (reference implementation / gsplat). */
export function gaussianPly(splats: Splat[], properties = PROPERTIES): Buffer {
  const header = `ply\nformat binary_little_endian 1.0\nelement vertex ${splats.length}\n${properties.map((p) => `property float ${p}\n`).join('')}end_header\n`;
  const body = Buffer.alloc(splats.length * properties.length * 4);
  splats.forEach((s, i) => {
    const values: Record<string, number> = {
      x: s.xyz[0],
      y: s.xyz[1],
      z: s.xyz[2],
      f_dc_0: dc(s.rgb[0]),
      f_dc_1: dc(s.rgb[1]),
      f_dc_2: dc(s.rgb[2]),
      opacity: Math.log(s.opacity / (1 - s.opacity)),
      scale_0: s.logScale,
      scale_1: s.logScale,
      scale_2: s.logScale,
      rot_0: 1,
    };
    properties.forEach((p, k) => body.writeFloatLE(values[p] ?? 0, (i * properties.length + k) * 4));
  });
  return Buffer.concat([Buffer.from(header, 'latin1'), body]);
}

/** A red ball of 2000 splats at the origin and a small blue one to its right (+x). */
export function scene(): Splat[] {
  const splats: Splat[] = [];
  for (let i = 0; i < 2000; i++) {
    // Fibonacci sphere: evenly spread, deterministic.
    const y = 1 - (2 * (i + 0.5)) / 2000;
    const r = Math.sqrt(1 - y * y);
    const phi = i * Math.PI * (3 - Math.sqrt(5));
    splats.push({
      xyz: [r * Math.cos(phi), y, r * Math.sin(phi)],
      rgb: [0.9, 0.1, 0.1],
      opacity: 0.95,
      logScale: Math.log(0.06),
    });
  }
  for (let i = 0; i < 200; i++) {
    const a = (i / 200) * 2 * Math.PI;
    splats.push({
      xyz: [1.8 + 0.2 * Math.cos(a), 0.2 * Math.sin(a), 0],
      rgb: [0.1, 0.1, 0.9],
      opacity: 0.95,
      logScale: Math.log(0.05),
    });
  }
  return splats;
}
