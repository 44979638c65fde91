/**
 * The link to a completed request's viewer page (written by the export stage): a signed URL of the
 * page with signed URLs of the files it reads in its fragment (`#export/scene.spz=URL&…`), so the
 * bucket stays private and the page, served by Cloud Storage from the same origin as the files,
 * needs no CORS (the Node client signs path-style URLs, https://storage.googleapis.com/BUCKET/OBJECT:
 * https://cloud.google.com/storage/docs/access-control/signing-urls-with-helpers). A fragment never
 * reaches a server, so the file URLs stay out of access logs.
 */
import { VIEWER_FILES } from '../../jobs/export/viewer-data.js';
import type { SignUrl } from '../storage/signed-urls.js';

/** The workflow's `outputs` on COMPLETED (workflows/reconstruct.yaml, step `finish`). */
interface CompletedOutputs {
  request_prefix?: unknown;
  stages?: unknown;
}

export async function viewerLink(outputs: CompletedOutputs, sign: SignUrl): Promise<string | undefined> {
  const prefix = outputs.request_prefix;
  const stages = Array.isArray(outputs.stages) ? (outputs.stages as unknown[]) : [];
  if (typeof prefix !== 'string' || !/^gs:\/\/.+\/$/.test(prefix) || !stages.includes('export')) return undefined;
  const read = stages.includes('mesh') ? [VIEWER_FILES.scene, VIEWER_FILES.mesh] : [VIEWER_FILES.scene];
  const [page, ...files] = await Promise.all([VIEWER_FILES.page, ...read].map((path) => sign(prefix + path)));
  const fragment = new URLSearchParams(read.map((path, i): [string, string] => [path, files[i]!]));
  return `${page!}#${fragment.toString()}`;
}
