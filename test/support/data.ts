/** The real photos in `../shared/data` (see its README), used in place and never copied into the repository. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

const candidates = [process.env['SPLATFLOW_TEST_DATA'], resolve(import.meta.dirname, '../../../../shared/data')];

export const SHARED_DATA = candidates.find((dir): dir is string => dir !== undefined && existsSync(dir)) ?? '';

export function sharedData(...parts: string[]): string {
  if (!SHARED_DATA) throw new Error('../shared/data is missing (set SPLATFLOW_TEST_DATA to its folder)');
  return resolve(SHARED_DATA, ...parts);
}
