/**
 * What an uploaded object starts (pure): a video, or an image set (a zip, or a manifest listing
 * images) under the uploads prefix starts a request; anything else is rejected with a reason.
 */
import { derivedRequestId } from '../http/idempotency.js';
import type { StorageObjectData } from './schemas.js';
import { scopeOf } from './scope.js';

export const VIDEO_EXTENSIONS = ['.mp4', '.mov', '.m4v', '.webm', '.mkv'];
const IMAGE_SET_EXTENSIONS = ['.zip'];
const MANIFEST_NAME = 'manifest.json';

export type UploadDecision =
  | {
      accept: true;
      kind: 'video' | 'images';
      session_id: string;
      /** The uploader's scope (scope.ts), when the object lies in one; else an operator's upload. */
      scope?: string;
    }
  | { accept: false; reason: string };

export interface UploadLimits {
  uploadsPrefix: string;
  maxBytes: number;
}

const extension = (name: string): string => {
  const dot = name.lastIndexOf('.');
  return dot > name.lastIndexOf('/') ? name.slice(dot).toLowerCase() : '';
};

/** `uploads/<session>/…`: the first folder under the prefix names the session; else the file stem. */
function sessionOf(relative: string): string {
  const [first, ...rest] = relative.split('/');
  const raw = rest.length > 0 ? first! : first!.replace(/\.[^.]*$/, '');
  const cleaned = raw
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 128);
  return cleaned || 'upload';
}

export function classifyUpload(object: StorageObjectData, limits: UploadLimits): UploadDecision {
  const { name } = object;
  if (!name.startsWith(limits.uploadsPrefix)) return { accept: false, reason: `not under ${limits.uploadsPrefix}` };
  const relative = name.slice(limits.uploadsPrefix.length);
  const segments = relative.split('/');
  if (segments.some((segment) => segment === '' || segment === '.' || segment === '..')) {
    return { accept: false, reason: 'object name has empty, "." or ".." path segments' };
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(name))
    return { accept: false, reason: 'object name has control characters or backslashes' };
  const size = Number(object.size ?? 0);
  if (size === 0) return { accept: false, reason: 'object is empty' };
  if (size > limits.maxBytes)
    return { accept: false, reason: `object is ${size} bytes; the limit is ${limits.maxBytes}` };
  const ext = extension(name);
  // `uploads/<scope>/<session>/…` (POST /uploads) or, written by an operator, `uploads/<session>/…`.
  const scope = scopeOf(relative);
  const owned = scope
    ? { scope, session_id: sessionOf(relative.slice(scope.length + 1)) }
    : { session_id: sessionOf(relative) };
  if (VIDEO_EXTENSIONS.includes(ext)) return { accept: true, kind: 'video', ...owned };
  if (IMAGE_SET_EXTENSIONS.includes(ext) || segments.at(-1) === MANIFEST_NAME) {
    return { accept: true, kind: 'images', ...owned };
  }
  return { accept: false, reason: `unsupported file type "${ext || '(none)'}": expected a video or an image set` };
}

/** The same object generation always maps to the same request id (UUID-shaped), which dedups deliveries. */
export function uploadRequestId(object: StorageObjectData): string {
  return derivedRequestId(`${object.bucket}/${object.name}#${object.generation}`);
}
