/**
 * The interpreter of the Python stages and of the project's Python tools on this machine: SPLATFLOW_PYTHON, else the
 * repository's virtual environment, which local/setup installs requirements.lock into (the images install the same
 * lock). One setting, read by the jobs launcher, the tests, `npm run bench:train` and `.ci/python-style` alike.
 */
import { join } from 'node:path';

/** Where local/setup makes the virtual environment's interpreter, relative to the repository root. */
export const VENV_PYTHON = '.venv/bin/python';

export function pythonInterpreter(root: string, env: NodeJS.ProcessEnv = process.env): string {
  return env.SPLATFLOW_PYTHON || join(root, VENV_PYTHON);
}
