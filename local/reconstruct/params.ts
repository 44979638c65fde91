/**
 * The request params `npm run reconstruct` sends: per-stage parameters sized for a 2-core CPU
 * (`preview`), or the train preset alone for the GPU presets, and the depth model when one is configured.
 */
import type { Mapper } from '../../jobs/sfm/schema.js';

export const TRAIN_PRESETS = ['preview', 'standard', 'high'] as const;
export type TrainPreset = (typeof TRAIN_PRESETS)[number];

export interface RunChoices {
  preset: TrainPreset;
  /** Frames kept from the video (frames' target_frames). */
  frames?: number;
  /** Training steps, overriding the preset's. */
  iterations?: number;
  /** The sfm stage's mapper, overriding its `auto` (to compare the two on one capture). */
  mapper?: Mapper;
  /** `SPLATFLOW_DEPTH_MODEL_URI` / `_SHA256`: without a model the depth stage is skipped. */
  depthModel?: { uri: string; sha256?: string };
}

/**
 * Sized for a 2-core CPU (figures in docs/reconstruct.md): frames and COLMAP at 640 px. 48 frames are the
 * aim, but the frames stage takes more where the camera's travel needs them to keep overlap (room.mp4:
 * ~104), up to a ceiling of 160; 6 sequential neighbours per frame are then enough at that spacing and
 * keep matching within the sfm budget. train runs its own `preview` preset (1500 steps at 256 px, up
 * to 15k Gaussians); the mesh stage sizes its grid from the cameras itself (CPU defaults).
 */
const PREVIEW = {
  frames: { target_frames: 48, max_frames: 160, max_long_side: 640 },
  sfm: { max_image_size: 640, undistort_max_image_size: 640, sequential_overlap: 6 },
  train: { preset: 'preview' },
};

/** The depth model `SPLATFLOW_DEPTH_MODEL_URI` (and `_SHA256`) name, if any. */
export function depthModelFromEnv(env: NodeJS.ProcessEnv = process.env): RunChoices['depthModel'] {
  const uri = env.SPLATFLOW_DEPTH_MODEL_URI;
  return uri ? { uri, sha256: env.SPLATFLOW_DEPTH_MODEL_SHA256 } : undefined;
}

export function requestParams(choices: RunChoices): Record<string, unknown> {
  const base: Record<string, Record<string, unknown>> = choices.preset === 'preview'
    ? structuredClone(PREVIEW)
    : { train: { preset: choices.preset } };
  if (choices.frames !== undefined) base.frames = { ...base.frames, target_frames: choices.frames };
  if (choices.iterations !== undefined) base.train = { ...base.train, iterations: choices.iterations };
  if (choices.mapper !== undefined) base.sfm = { ...base.sfm, mapper: choices.mapper };
  if (!choices.depthModel) return { ...base, skip_depth: true };
  const { uri, sha256 } = choices.depthModel;
  return { ...base, depth: { model_uri: uri, ...(sha256 ? { model_sha256: sha256 } : {}) } };
}

/**
 * The GPU presets train 30 000 steps at up to full resolution: hours on a CPU. Said before anything
 * starts, so a user without an NVIDIA GPU can stop and choose `preview`.
 */
export function presetWarning(preset: TrainPreset, gpu: boolean): string | undefined {
  if (preset === 'preview' || gpu) return undefined;
  return `warning: preset ${preset} is sized for an NVIDIA GPU; this machine has none, and its MCMC densification runs only on gsplat's CUDA backend, so the train stage will refuse it (--preset preview takes minutes)`;
}
