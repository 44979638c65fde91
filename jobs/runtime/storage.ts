/**
 * Where inputs and outputs live: a GCS bucket in the cloud, a folder locally. Stages see only
 * this interface and address everything by URI (`gs://bucket/key`, `file:///path` or a path).
 */
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

export interface Storage {
  /** True when an object (not a folder) exists at the URI. */
  exists(uri: string): Promise<boolean>;
  /** URIs of every object under a prefix ending with `/`, recursively, sorted. */
  list(prefix: string): Promise<string[]>;
  download(uri: string, localPath: string): Promise<void>;
  upload(localPath: string, uri: string, contentType?: string): Promise<void>;
  /** Removes every object under a prefix (used to clear a stage's own folder before a re-run). */
  removePrefix(prefix: string): Promise<void>;
}

export type Location = { kind: 'gs'; bucket: string; key: string } | { kind: 'local'; path: string };

export function parseLocation(uri: string): Location {
  if (uri.startsWith('gs://')) {
    const rest = uri.slice('gs://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    if (!/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(bucket)) throw new Error(`invalid bucket name in ${uri}`);
    return { kind: 'gs', bucket, key: slash < 0 ? '' : rest.slice(slash + 1) };
  }
  const trailing = uri.endsWith('/') ? '/' : '';
  const path = uri.startsWith('file://') ? fileURLToPath(uri) : resolve(uri);
  return { kind: 'local', path: path.endsWith('/') ? path : path + trailing };
}

/** `join('gs://b/requests/1/', 'frames/', 'a.jpg')`: plain concatenation with single slashes. */
export function joinUri(prefix: string, ...parts: string[]): string {
  return parts.reduce((acc, part) => `${acc.replace(/\/+$/, '')}/${part.replace(/^\/+/, '')}`, prefix);
}

/** The last path segment of a URI. */
export function baseName(uri: string): string {
  const trimmed = uri.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}
