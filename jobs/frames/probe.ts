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
}

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  duration?: string;
  tags?: { rotate?: string };
  side_data_list?: { rotation?: number }[];
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
