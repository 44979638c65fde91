/** What ffprobe says about an input, and whether the frames stage can take it. */
import { exec, ExecError } from '../runtime/exec.js';
import { InputRefused } from '../runtime/errors.js';

export interface VideoInfo {
  duration_s: number;
  fps: number;
  /** Coded size, before rotation. */
  width: number;
  height: number;
  /** Clockwise degrees a player turns the picture (0, 90, 180, 270). */
  rotation: number;
  codec: string;
  /** `hlg` or `pq` for HDR video (frames are tone-mapped to SDR, video.ts), else `sdr`. */
  dynamic_range: DynamicRange;
}

export type DynamicRange = 'sdr' | 'hlg' | 'pq';

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  duration?: string;
  color_transfer?: string;
  tags?: { rotate?: string };
  side_data_list?: { rotation?: number; dv_profile?: number; dv_bl_signal_compatibility_id?: number }[];
}

interface ProbeOutput {
  streams?: ProbeStream[];
  format?: { duration?: string };
}

function rate(text: string | undefined): number {
  const [num, den] = (text ?? '0/0').split('/').map(Number);
  return num && den ? num / den : 0;
}

/**
 * Display-matrix rotation is counter-clockwise in ffprobe's side data and clockwise in the old
 * `rotate` tag; both are answered as the clockwise turn.
 */
function rotationOf(stream: ProbeStream): number {
  const side = stream.side_data_list?.find((s) => typeof s.rotation === 'number')?.rotation;
  const degrees = side !== undefined ? -side : Number(stream.tags?.rotate ?? 0);
  return (((Math.round(degrees / 90) * 90) % 360) + 360) % 360;
}

/** Dolby Vision base-layer compatibility ids (ETSI GS CCM 001): 1 is HDR10 (PQ), 4 is HLG (iPhone's profile 8.4). */
const DOLBY_VISION_BASE: Record<number, DynamicRange> = { 1: 'pq', 4: 'hlg' };

/**
 * From the stream's transfer characteristic; a Dolby Vision stream without one is read by its
 * base layer, which is what a player without Dolby Vision shows.
 */
function dynamicRangeOf(stream: ProbeStream): DynamicRange {
  if (stream.color_transfer === 'arib-std-b67') return 'hlg';
  if (stream.color_transfer === 'smpte2084') return 'pq';
  const base = stream.side_data_list?.find((s) => s.dv_profile !== undefined)?.dv_bl_signal_compatibility_id;
  return (base !== undefined && DOLBY_VISION_BASE[base]) || 'sdr';
}

/** Pure: the decision on ffprobe's JSON. */
export function parseProbe(json: ProbeOutput): VideoInfo {
  const video = json.streams?.find(
    (s) => s.codec_type === 'video' && s.codec_name !== 'mjpeg' && s.codec_name !== 'png',
  );
  if (!video) {
    const kinds = (json.streams ?? []).map((s) => s.codec_type).filter(Boolean);
    throw new InputRefused(
      kinds.length ? `the input has no video stream (only ${kinds.join(', ')})` : 'the input has no video stream',
    );
  }
  const duration = Number(video.duration ?? json.format?.duration ?? NaN);
  const fps = rate(video.avg_frame_rate) || rate(video.r_frame_rate);
  if (!video.width || !video.height || !Number.isFinite(duration) || !fps) {
    throw new InputRefused('the video stream has no usable size, duration or frame rate');
  }
  return {
    duration_s: duration,
    fps,
    width: video.width,
    height: video.height,
    rotation: rotationOf(video),
    codec: video.codec_name ?? 'unknown',
    dynamic_range: dynamicRangeOf(video),
  };
}

export async function probeVideo(path: string): Promise<VideoInfo> {
  let stdout: Buffer;
  try {
    ({ stdout } = await exec('ffprobe', [
      '-v',
      'error',
      '-print_format',
      'json',
      '-show_streams',
      '-show_format',
      path,
    ]));
  } catch (error) {
    if (error instanceof ExecError) throw new InputRefused(`the input is not a readable video (${error.message})`);
    throw error;
  }
  return parseProbe(JSON.parse(stdout.toString('utf8')) as ProbeOutput);
}

/** The picture as shown, after rotation. */
export function displaySize(info: VideoInfo): { width: number; height: number } {
  return info.rotation % 180 === 90
    ? { width: info.height, height: info.width }
    : { width: info.width, height: info.height };
}
