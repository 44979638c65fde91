/**
 * `video_frames.json`, the frames stage's record of every decoded frame of a video (columns of
 * equal length), and what later stages do with it: find better or denser frames near the chosen
 * ones and extract them from the same video with the frames stage's own decoder.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv, type JSONSchemaType } from 'ajv';
import { probeVideo } from './probe.js';
import { extractFrames } from './video.js';

export const VIDEO_FRAMES_FILE = 'video_frames.json';

export interface VideoFrames {
  /** The long side the chosen frames were written at; extra frames match it. */
  long_side: number;
  index: number[];
  time_s: number[];
  sharpness: number[];
  brightness: number[];
  /** The camera's travel since the first frame, frame widths (motion.ts). */
  travel: number[];
}

const column = { type: 'array', items: { type: 'number' } } as const;
const schema: JSONSchemaType<VideoFrames> = {
  type: 'object',
  properties: {
    long_side: { type: 'integer', minimum: 1 },
    index: { type: 'array', items: { type: 'integer', minimum: 0 } },
    time_s: column,
    sharpness: column,
    brightness: column,
    travel: column,
  },
  required: ['long_side', 'index', 'time_s', 'sharpness', 'brightness', 'travel'],
  additionalProperties: false,
};
const valid = new Ajv({ allErrors: true }).compile(schema);

export async function readVideoFrames(dir: string): Promise<VideoFrames> {
  const table: unknown = JSON.parse(await readFile(join(dir, VIDEO_FRAMES_FILE), 'utf8'));
  const n = (table as { index?: unknown[] }).index?.length;
  if (!valid(table) || [table.time_s, table.sharpness, table.brightness, table.travel].some((c) => c.length !== n)) {
    throw new Error(`${VIDEO_FRAMES_FILE} is malformed`);
  }
  return table;
}

/** Rows of the table (decode order) whose travel lies in [from, to], leaving out the frame indices in `exclude`. */
export function framesWithin(table: VideoFrames, from: number, to: number, exclude: ReadonlySet<number> = new Set()) {
  const found: number[] = [];
  for (const [row, index] of table.index.entries()) {
    const travel = table.travel[row]!;
    if (travel >= from && travel <= to && !exclude.has(index)) found.push(row);
  }
  return found;
}

/**
 * Writes the video's frames at the given decode-order indices, at the chosen frames' size, to
 * `destination(index)`; the video is the request's input, fetched by the caller.
 */
export async function extractMore(
  video: string,
  table: VideoFrames,
  indices: readonly number[],
  destination: (index: number) => string,
): Promise<void> {
  if (indices.length === 0) return;
  const info = await probeVideo(video);
  await extractFrames(video, info, indices, {
    longSide: table.long_side,
    destination: (order) => destination(indices[order]!),
  });
}
