import { createGcsStorage } from './storage-gcs.js';
import { createLocalStorage } from './storage-local.js';
import type { Storage } from './storage.js';

/**
 * One Storage that routes each URI to the right backend, so a local run may read a gs:// model
 * and the GCS client is only built when a gs:// URI is actually used.
 */
export function openStorage(gcs: () => Storage = () => createGcsStorage()): Storage {
  let remote: Storage | undefined;
  const local = createLocalStorage();
  const pick = (uri: string): Storage => (uri.startsWith('gs://') ? (remote ??= gcs()) : local);
  return {
    exists: (uri) => pick(uri).exists(uri),
    list: (prefix) => pick(prefix).list(prefix),
    download: (uri, path) => pick(uri).download(uri, path),
    upload: (path, uri, type) => pick(uri).upload(path, uri, type),
    removePrefix: (prefix) => pick(prefix).removePrefix(prefix),
  };
}
