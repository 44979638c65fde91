/**
 * The Terraform configuration as data: every `.tf` file of a module parsed with @cdktf/hcl2json
 * (blocks become arrays of objects; expressions stay strings like "${var.x}"). No terraform
 * binary can run here, so tests assert on this structure.
 */
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/**
 * Loaded untyped on purpose: the package's type declarations pull TypeScript's DOM library into the
 * whole program (`/// <reference lib="dom" />`), which changes `fetch`/`Headers` types everywhere.
 */
const hcl2json = createRequire(import.meta.url)('@cdktf/hcl2json') as {
  parse(filename: string, contents: string): Promise<Record<string, unknown>>;
};
export const parseHcl = (filename: string, contents: string) => hcl2json.parse(filename, contents);

export type Body = Record<string, unknown>;

export interface Block {
  /** `resource` or `data`. */
  kind: string;
  type: string;
  name: string;
  file: string;
  body: Body;
}

export interface TerraformModule {
  /** File name → its text. */
  files: Map<string, string>;
  blocks: Block[];
  variables: Map<string, Body>;
  locals: Body;
  outputs: Map<string, Body>;
}

export async function loadModule(dir: string): Promise<TerraformModule> {
  const names = (await readdir(dir)).filter((name) => name.endsWith('.tf')).sort();
  const module: TerraformModule = {
    files: new Map(),
    blocks: [],
    variables: new Map(),
    locals: {},
    outputs: new Map(),
  };
  for (const file of names) {
    const text = await readFile(join(dir, file), 'utf8');
    module.files.set(file, text);
    const parsed = (await parseHcl(file, text)) as Record<string, Record<string, unknown>>;
    for (const kind of ['resource', 'data']) {
      for (const [type, byName] of Object.entries(parsed[kind] ?? {})) {
        for (const [name, bodies] of Object.entries(byName as Record<string, Body[]>)) {
          module.blocks.push({ kind, type, name, file, body: first(bodies) });
        }
      }
    }
    for (const [name, bodies] of Object.entries((parsed.variable ?? {}) as Record<string, Body[]>)) {
      module.variables.set(name, first(bodies));
    }
    for (const [name, bodies] of Object.entries((parsed.output ?? {}) as Record<string, Body[]>)) {
      module.outputs.set(name, first(bodies));
    }
    for (const locals of (parsed.locals ?? []) as unknown as Body[]) Object.assign(module.locals, locals);
  }
  return module;
}

function first(bodies: Body[]): Body {
  const body = bodies[0];
  if (!body) throw new Error('empty block');
  return body;
}

/** The one resource of this type and name; throws naming it when absent. */
export function resource(module: TerraformModule, type: string, name: string): Body {
  const block = module.blocks.find((b) => b.kind === 'resource' && b.type === type && b.name === name);
  if (!block) throw new Error(`resource ${type}.${name} not found`);
  return block.body;
}

/** The first nested block `name` of a body (hcl2json makes every block a list). */
export function child(body: Body, name: string): Body {
  const list = body[name];
  if (!Array.isArray(list) || list.length === 0) throw new Error(`block ${name} not found`);
  return list[0] as Body;
}

/** The content of `dynamic "name"`, with its for_each. */
export function dynamicBlock(body: Body, name: string): { forEach: string; content: Body } {
  const entry = child((body.dynamic ?? {}) as Body, name);
  return { forEach: String(entry.for_each), content: child(entry, 'content') };
}

/** Every [path, value] pair of string leaves under a body, for searches across the whole module. */
export function* strings(value: unknown, path = ''): Generator<[string, string]> {
  if (typeof value === 'string') yield [path, value];
  else if (Array.isArray(value)) for (const item of value) yield* strings(item, path);
  else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) yield* strings(item, path ? `${path}.${key}` : key);
  }
}
