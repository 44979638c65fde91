/** An image-set input: a folder (local or gs://) or a zip of photos, in name order. */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { isImageName } from '../image/names.js';
import { InputRefused } from '../runtime/errors.js';

/**
 * Extracts the photos of a zip into `dir` under numbered names (so two `IMG_1.jpg` in
 * different folders cannot collide and no entry name can escape `dir`), refusing archives
 * whose photos would exceed `maxBytes` or `maxCount` once uncompressed.
 */
export async function extractZipImages(
  zipPath: string,
  dir: string,
  limits: { maxBytes: number; maxCount: number },
): Promise<{ path: string; source: string }[]> {
  await mkdir(dir, { recursive: true });
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(zipPath, { lazyEntries: true, autoClose: false });
  } catch (error) {
    throw new InputRefused(`the input is not a readable zip archive (${(error as Error).message})`);
  }
  const entries: yauzl.Entry[] = [];
  try {
    for await (const entry of zip.eachEntry()) if (isImageName(entry.fileName)) entries.push(entry);
  } catch (error) {
    zip.close();
    throw new InputRefused(`the zip archive is damaged (${(error as Error).message})`);
  }
  entries.sort((a, b) => a.fileName.localeCompare(b.fileName));
  const total = entries.reduce((sum, e) => sum + e.uncompressedSize, 0);
  if (entries.length > limits.maxCount) {
    zip.close();
    throw new InputRefused(
      `the zip holds ${entries.length} photos; at most ${limits.maxCount} are accepted (max_images)`,
    );
  }
  if (total > limits.maxBytes) {
    zip.close();
    throw new InputRefused(
      `the zip's photos take ${total} bytes uncompressed; at most ${limits.maxBytes} are accepted (max_input_bytes)`,
    );
  }
  const files: { path: string; source: string }[] = [];
  try {
    for (const [index, entry] of entries.entries()) {
      const extension = entry.fileName.slice(entry.fileName.lastIndexOf('.')).toLowerCase();
      const path = join(dir, `${String(index).padStart(5, '0')}${extension}`);
      try {
        await pipeline(await zip.openReadStreamPromise(entry), createWriteStream(path));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code) throw error; // the disk's failure, not the archive's
        // yauzl stops an entry at the size its directory declares: a bomb that lies about it ends here.
        throw new InputRefused(`the zip archive is damaged at ${entry.fileName} (${(error as Error).message})`);
      }
      files.push({ path, source: entry.fileName });
    }
  } finally {
    zip.close();
  }
  return files;
}
