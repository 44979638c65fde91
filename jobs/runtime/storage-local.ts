/** The Storage interface over the local file system, for local runs and tests. */
import { copyFile, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseLocation, type Storage } from './storage.js';

function localPath(uri: string): string {
  const location = parseLocation(uri);
  if (location.kind !== 'local') throw new Error(`not a local path: ${uri}`);
  return location.path;
}

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  const files: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await walk(path)));
    else if (entry.isFile()) files.push(path);
  }
  return files;
}

export function createLocalStorage(): Storage {
  return {
    async exists(uri) {
      return stat(localPath(uri)).then(
        (s) => s.isFile(),
        () => false,
      );
    },
    async list(prefix) {
      const root = localPath(prefix);
      const files = await walk(root);
      // Answer in the caller's own spelling (path or file://) so URIs can be joined back.
      const asUri = prefix.startsWith('file://') ? (p: string) => pathToFileURL(p).href : (p: string) => p;
      return files
        .map((file) => relative(root, file))
        .sort()
        .map((rel) => asUri(join(root, rel)));
    },
    async download(uri, destination) {
      await mkdir(dirname(destination), { recursive: true });
      await copyFile(localPath(uri), destination);
    },
    async upload(source, uri) {
      const destination = localPath(uri);
      await mkdir(dirname(destination), { recursive: true });
      await copyFile(source, destination);
    },
    async removePrefix(prefix) {
      await rm(localPath(prefix), { recursive: true, force: true });
    },
  };
}
