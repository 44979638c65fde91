/** The Storage interface over Cloud Storage with the official client. */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Storage as GcsClient } from '@google-cloud/storage';
import { parseLocation, type Storage } from './storage.js';

function object(uri: string): { bucket: string; key: string } {
  const location = parseLocation(uri);
  if (location.kind !== 'gs') throw new Error(`not a gs:// URI: ${uri}`);
  return location;
}

/** `client` defaults to one built from the environment (`STORAGE_EMULATOR_HOST` in tests). */
export function createGcsStorage(client: GcsClient = new GcsClient()): Storage {
  const file = (uri: string) => {
    const { bucket, key } = object(uri);
    return client.bucket(bucket).file(key);
  };
  return {
    async exists(uri) {
      const [found] = await file(uri).exists();
      return found;
    },
    async list(prefix) {
      const { bucket, key } = object(prefix);
      const [files] = await client.bucket(bucket).getFiles({ prefix: key, autoPaginate: true });
      return files
        .map((f) => f.name)
        .filter((name) => !name.endsWith('/'))
        .sort()
        .map((name) => `gs://${bucket}/${name}`);
    },
    async download(uri, destination) {
      await mkdir(dirname(destination), { recursive: true });
      await file(uri).download({ destination });
    },
    async upload(source, uri, contentType) {
      const { bucket, key } = object(uri);
      await client.bucket(bucket).upload(source, { destination: key, contentType, resumable: true });
    },
    async removePrefix(prefix) {
      const { bucket, key } = object(prefix);
      await client.bucket(bucket).deleteFiles({ prefix: key, force: true });
    },
  };
}
