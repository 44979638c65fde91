/**
 * One set of Python packages: requirements.lock pins every package with its hashes, and `local/setup` and every job
 * image that runs Python install exactly that file, hash-checked, and nothing else from an index. The scripts and
 * Dockerfiles are parsed into their commands, not searched for a version.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { VENV_PYTHON } from '../../local/python.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');
const LOCK = 'requirements.lock';
/** The sfm image's set: the lock's pycolmap built with CUDA, resolved under the lock's pins (local/lock-python). */
const SFM_CUDA = 'jobs/sfm/requirements-cuda.txt';

/** Joins `\`-continued lines and drops comment lines (as a shell or Docker reads them before anything else). */
function logicalLines(text: string): string[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => !/^\s*#/.test(line));
}

/** Shell text split into its simple commands (at `&&`, `||`, `;`, `|` outside quotes), each as words, quotes removed. */
function shellCommands(text: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word: string | undefined;
  let quote = '';
  const endWord = (): void => {
    if (word !== undefined) words.push(word);
    word = undefined;
  };
  const endCommand = (): void => {
    endWord();
    if (words.length) commands.push(words);
    words = [];
  };
  for (const line of logicalLines(text)) {
    for (let i = 0; i < line.length; i++) {
      const c = line[i]!;
      if (quote) {
        if (c === quote) quote = '';
        else word = (word ?? '') + c;
      } else if (c === '"' || c === "'") {
        quote = c;
        word ??= '';
      } else if (c === '#' && word === undefined) {
        break; // a comment to the end of the line
      } else if (/\s/.test(c)) {
        endWord();
      } else if (c === ';' || c === '|' || (c === '&' && line[i + 1] === '&')) {
        if (line[i + 1] === c) i++;
        endCommand();
      } else {
        word = (word ?? '') + c;
      }
    }
    endCommand();
  }
  return commands;
}

/** A Dockerfile's instructions, keyword upper-cased, with the rest of each as written. */
function dockerInstructions(text: string): Array<{ keyword: string; rest: string }> {
  return logicalLines(text)
    .map((line) => /^\s*(\w+)\s+(.*)$/.exec(line))
    .filter((match) => match !== null)
    .map((match) => ({ keyword: match[1]!.toUpperCase(), rest: match[2]! }));
}

/** `pip install …` however pip is started (pip, pip3, a venv's pip, python -m pip): its arguments; else undefined. */
function pipInstallArgs(words: string[]): string[] | undefined {
  const start = words.findIndex((word) => !/^\w+=/.test(word)); // past VAR=value prefixes
  const [program, ...rest] = words.slice(start);
  const name = program?.split('/').pop() ?? '';
  const args = /^pip3?$/.test(name)
    ? rest
    : /^python3?$/.test(name) && rest[0] === '-m' && rest[1] === 'pip'
      ? rest.slice(2)
      : undefined;
  return args?.[0] === 'install' ? args.slice(1) : undefined;
}

/** What one `pip install` installs: the requirement files it names and its other (positional) arguments. */
function installs(args: string[]): { files: string[]; packages: string[]; requireHashes: boolean; noDeps: boolean } {
  const files: string[] = [];
  const packages: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-r' || arg === '--requirement') files.push(args[++i]!);
    else if (arg.startsWith('--requirement=')) files.push(arg.slice('--requirement='.length));
    else if (!arg.startsWith('-')) packages.push(arg);
  }
  return { files, packages, requireHashes: args.includes('--require-hashes'), noDeps: args.includes('--no-deps') };
}

/** A wheel built inside the image (gsplat's), installed from a file without letting pip resolve anything. */
const builtWheel = (install: ReturnType<typeof installs>): boolean =>
  install.noDeps && install.files.length === 0 && install.packages.every((path) => /^\/\S+\.whl$/.test(path));

/** Every `pip install` of a shell script or a Dockerfile's RUN instructions. */
function pipInstalls(commands: string[][]): Array<ReturnType<typeof installs>> {
  return commands.flatMap((words) => {
    const args = pipInstallArgs(words);
    return args ? [installs(args)] : [];
  });
}

describe('the Python packages', () => {
  const lock = read(LOCK);

  it('are pinned to one version each, every file hash-checked, with no markers that fork the set', () => {
    const entries = logicalLines(lock)
      .map((line) => line.trim())
      .filter(Boolean);
    assert.ok(entries.length >= 10, 'an empty lock');
    for (const entry of entries) {
      const match = /^([A-Za-z0-9._-]+)==([^\s;]+)((?:\s+--hash=sha256:[0-9a-f]{64})+)$/.exec(entry);
      assert.ok(match, `not a pinned, hashed requirement: ${entry.slice(0, 120)}`);
    }
  });

  it('hold every requirement of requirements.in, at its pin where it has one', () => {
    const locked = new Map(
      logicalLines(lock)
        .map((line) => /^([A-Za-z0-9._-]+)==(\S+)/.exec(line.trim()))
        .filter((match) => match !== null)
        .map((match) => [normalize(match[1]!), match[2]!]),
    );
    const wanted = logicalLines(read('requirements.in'))
      .map((line) => line.trim())
      .filter(Boolean);
    for (const requirement of wanted) {
      const [, name, pin] = /^([A-Za-z0-9._-]+)(?:==(\S+))?$/.exec(requirement) ?? [];
      assert.ok(name, `requirements.in: ${requirement} is not NAME or NAME==VERSION`);
      assert.ok(locked.has(normalize(name)), `${name} is not in ${LOCK}: run local/lock-python`);
      if (pin) assert.equal(locked.get(normalize(name)), pin, `${name}: ${LOCK} is not at requirements.in's pin`);
    }
  });

  it('local/setup installs into the venv whose interpreter everything runs, from the lock alone', () => {
    const commands = shellCommands(read('local/setup'));
    const venvPip = join(dirname(VENV_PYTHON), 'pip');
    const pip = commands.filter((words) => pipInstallArgs(words));
    assert.deepEqual(
      pip.map((words) => words[0]),
      [venvPip],
      `local/setup installs Python packages once, with ${venvPip}`,
    );
    assert.deepEqual(pipInstalls(pip), [{ files: [LOCK], packages: [], requireHashes: true, noDeps: false }]);
    const venv = dirname(dirname(VENV_PYTHON));
    assert.ok(
      commands.some((words) => words.join(' ') === `/usr/bin/python3 -m venv ${venv}`),
      `local/setup makes ${venv}`,
    );
  });

  it('every job image that runs Python installs the lock, hash-checked, and from no index anything else', () => {
    const dockerfiles = readdirSync(join(root, 'jobs', 'containers')).filter((name) => name.endsWith('.Dockerfile'));
    const python = dockerfiles.filter((name) => runsPython(read(join('jobs', 'containers', name))));
    assert.ok(python.includes('gsplat.Dockerfile'), 'the gsplat image (train, mesh) runs Python');
    for (const name of python) {
      const instructions = dockerInstructions(read(join('jobs', 'containers', name)));
      // Where each stage put the lock (COPY requirements.lock DEST), and what each RUN installs.
      const lockCopies = instructions
        .filter(({ keyword, rest }) => keyword === 'COPY' && rest.split(/\s+/)[0] === LOCK)
        .map(({ rest }) => rest.split(/\s+/)[1]!);
      const runs = instructions.filter(({ keyword }) => keyword === 'RUN').map(({ rest }) => shellCommands(rest));
      const pip = runs.flatMap(pipInstalls);
      const ofLock = pip.filter((install) => install.files.length > 0);
      assert.ok(ofLock.length > 0, `${name} runs Python but does not install ${LOCK}`);
      for (const install of ofLock) {
        assert.deepEqual(install.packages, [], `${name}: pip install of the lock names other packages`);
        assert.ok(install.requireHashes, `${name}: pip install of the lock without --require-hashes`);
        for (const file of install.files) {
          assert.ok(
            lockCopies.includes(file) || file === SFM_CUDA,
            `${name}: ${file} is neither ${LOCK} nor ${SFM_CUDA}`,
          );
        }
      }
      const others = pip.filter((install) => install.files.length === 0 && !builtWheel(install));
      assert.deepEqual(others, [], `${name} installs Python packages that are not in the lock`);
    }
  });
});

describe("the sfm image's CUDA set", () => {
  it("is the lock's pycolmap built with CUDA, every package it shares with the lock at the lock's version", () => {
    const pinsOf = (text: string): Map<string, string> =>
      new Map(
        logicalLines(text)
          .map((line) => /^([A-Za-z0-9._-]+)==(\S+)\s+--hash=sha256:/.exec(line.trim()))
          .filter((match) => match !== null)
          .map((match) => [normalize(match[1]!), match[2]!]),
      );
    const lock = pinsOf(read(LOCK));
    const cuda = pinsOf(read(SFM_CUDA));
    assert.ok(lock.get('pycolmap'), `${LOCK} pins pycolmap`);
    assert.equal(cuda.get('pycolmap-cuda12'), lock.get('pycolmap'));
    for (const [name, version] of cuda) {
      if (lock.has(name)) assert.equal(version, lock.get(name), `${SFM_CUDA}: ${name} is not at ${LOCK}'s version`);
    }
  });
});

/** PyPI's name normalization (PEP 503). */
function normalize(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/** An image runs Python if it installs an interpreter (apt-get install python3…) or builds from a Python image. */
function runsPython(dockerfile: string): boolean {
  return dockerInstructions(dockerfile).some(
    ({ keyword, rest }) =>
      (keyword === 'FROM' && /^python:/.test(rest)) ||
      (keyword === 'RUN' &&
        shellCommands(rest).some(
          (words) =>
            words.includes('install') &&
            /apt(-get)?$/.test(words[0] ?? '') &&
            words.some((w) => /^python3(\.\d+)?$/.test(w)),
        )),
  );
}
