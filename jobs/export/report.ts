/**
 * `report.json`: the one file a user opens to know what happened to a request — every stage's
 * timings, metrics and tool versions gathered from the manifests, in pipeline order.
 */
import { Ajv, type JSONSchemaType } from 'ajv';
import { STAGES } from '../runtime/contract.js';
import { captureSummary, type CaptureSummary } from './capture.js';

/** The part of a stage manifest (jobs/runtime) the report reads; other fields are left alone. */
export interface ManifestSummary {
  stage: string;
  started_at: string;
  finished_at: string;
  duration_s: number;
  timings: Record<string, number>;
  metrics: Record<string, unknown>;
  tools: Record<string, string>;
}

const summarySchema: JSONSchemaType<ManifestSummary> = {
  type: 'object',
  properties: {
    stage: { type: 'string' },
    started_at: { type: 'string' },
    finished_at: { type: 'string' },
    duration_s: { type: 'number', minimum: 0 },
    timings: { type: 'object', required: [], additionalProperties: { type: 'number' } },
    metrics: { type: 'object', required: [] },
    tools: { type: 'object', required: [], additionalProperties: { type: 'string' } },
  },
  required: ['stage', 'started_at', 'finished_at', 'duration_s', 'timings', 'metrics', 'tools'],
  additionalProperties: true,
};
const validSummary = new Ajv({ allErrors: true }).compile(summarySchema);

export class ReportError extends Error {
  override name = 'ReportError';
}

export interface Report {
  request_id: string;
  generated_at: string;
  /** Sum of the stages' own durations (compute time). */
  stages_duration_s: number;
  /** First stage start to last stage end, waits and retries included. */
  wall_clock_s: number;
  stages: (Omit<ManifestSummary, 'stage'> & { stage: string })[];
  /** Missing stages (depth is optional; a preprocess-only request stops after sfm). */
  skipped: string[];
  tools: Record<string, string>;
  outputs: Record<string, { bytes: number }>;
  /** The request's user-facing files by path under the request folder, with their size and format. */
  files: Record<string, ReportFile>;
  /** Pictures from the trainer's renderer (paths under the request folder). */
  renders: ReportRenders;
  /** The viewer page and the files it reads by URL (paths under the request folder). */
  viewer: { page: string; scene: string; mesh: string | null };
  /** What became of the capture's frames, and what sfm's ladder did (capture.ts). */
  capture?: CaptureSummary;
}

export interface ReportFile {
  bytes: number;
  format: string;
}

export interface ReportRenders {
  thumbnail: { file: string; camera: string; width: number; height: number };
  heldout: { file: string; camera: string; psnr: number; ssim: number }[];
}

export function buildReport(input: {
  requestId: string;
  manifests: Partial<Record<string, unknown>>;
  outputs: Record<string, { bytes: number }>;
  files: Report['files'];
  renders: Report['renders'];
  viewer: Report['viewer'];
  now?: Date;
}): Report {
  const stages: Report['stages'] = [];
  const skipped: string[] = [];
  for (const name of STAGES) {
    const manifest = input.manifests[name];
    if (manifest === undefined) {
      skipped.push(name);
      continue;
    }
    if (!validSummary(manifest)) {
      const why = (validSummary.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`).join('; ');
      throw new ReportError(`the ${name} stage's manifest is malformed: ${why}`);
    }
    const { stage, started_at, finished_at, duration_s, timings, metrics, tools } = manifest;
    if (stage !== name) throw new ReportError(`the ${name} stage's manifest names stage "${stage}"`);
    stages.push({ stage, started_at, finished_at, duration_s, timings, metrics, tools });
  }
  const starts = stages.map((s) => Date.parse(s.started_at)).filter(Number.isFinite);
  const ends = stages.map((s) => Date.parse(s.finished_at)).filter(Number.isFinite);
  const round = (s: number) => Math.round(s * 1000) / 1000;
  const capture = captureSummary(input.manifests);
  return {
    request_id: input.requestId,
    generated_at: (input.now ?? new Date()).toISOString(),
    stages_duration_s: round(stages.reduce((sum, s) => sum + s.duration_s, 0)),
    wall_clock_s: starts.length && ends.length ? round((Math.max(...ends) - Math.min(...starts)) / 1000) : 0,
    stages,
    skipped,
    tools: Object.assign({}, ...stages.map((s) => s.tools)) as Record<string, string>,
    outputs: input.outputs,
    files: input.files,
    renders: input.renders,
    viewer: input.viewer,
    ...(capture ? { capture } : {}),
  };
}
