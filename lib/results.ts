/**
 * The files a finished request hands its user, by the stage contract's names (jobs/README.md), relative
 * to the request's folder: one list for the local command, the status answer and the upload status object.
 */
export const RESULT_FILES = {
  splat_ply: { stage: 'train', path: 'train/point_cloud.ply' },
  splat_spz: { stage: 'export', path: 'export/scene.spz' },
  mesh_ply: { stage: 'mesh', path: 'mesh/mesh.ply' },
  mesh_glb: { stage: 'mesh', path: 'mesh/mesh.glb' },
  report: { stage: 'export', path: 'export/report.json' },
  viewer: { stage: 'export', path: 'export/viewer/index.html' },
} as const;

export type ResultName = keyof typeof RESULT_FILES;

const joined = (folder: string, path: string): string => `${folder.replace(/\/+$/, '')}/${path}`;

/** Every result file under `folder` (a gs:// URI or a path). */
export function resultFiles(folder: string): Record<ResultName, string> {
  return Object.fromEntries(
    Object.entries(RESULT_FILES).map(([name, file]) => [name, joined(folder, file.path)]),
  ) as Record<ResultName, string>;
}

/**
 * The result files a completed request has, from the workflow's outputs (`request_prefix` and the
 * `stages` that ran): a request that stopped early (preprocess) lists only what its stages wrote.
 */
export function completedResults(outputs: Record<string, unknown> | undefined): Partial<Record<ResultName, string>> {
  const folder = outputs?.request_prefix;
  const stages = outputs?.stages;
  if (typeof folder !== 'string' || !Array.isArray(stages)) return {};
  const all = resultFiles(folder);
  return Object.fromEntries(
    Object.entries(RESULT_FILES)
      .filter(([, file]) => stages.includes(file.stage))
      .map(([name]) => [name, all[name as ResultName]]),
  );
}

export const viewerOf = (folder: string): string => joined(folder, RESULT_FILES.viewer.path);
