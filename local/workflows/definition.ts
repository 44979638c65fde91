/**
 * Loads a Workflows definition and checks, before anything runs, that it uses only the supported
 * subset (docs/workflows-subset.md). Every problem names the subworkflow, the step and the
 * construct, so an unsupported definition never half-runs.
 */
import { parse as parseYaml } from 'yaml';
import { UnsupportedError } from './errors.js';
import { calledFunctions, expressionSource, parseExpression } from './expression.js';
import { RETRY_POLICIES } from './stdlib.js';

export type StepBody = Record<string, unknown>;
export interface Step {
  name: string;
  body: StepBody;
}
export interface Subworkflow {
  params: Array<{ name: string; default?: unknown; required: boolean }>;
  steps: Step[];
}
export type Workflow = Map<string, Subworkflow>;

/** Step constructs and the keys each may carry. */
const CONSTRUCTS: Record<string, string[]> = {
  assign: ['assign', 'next'],
  call: ['call', 'args', 'result', 'next'],
  switch: ['switch', 'next'],
  for: ['for', 'next'],
  parallel: ['parallel', 'next'],
  try: ['try', 'retry', 'except', 'next'],
  raise: ['raise'],
  return: ['return'],
  steps: ['steps', 'next'],
  next: ['next'],
};
const SWITCH_KEYS = ['condition', 'next', 'steps', 'return', 'raise'];
const FOR_KEYS = ['value', 'index', 'in', 'range', 'steps'];
const PARALLEL_KEYS = ['shared', 'branches', 'exception_policy'];
const RETRY_KEYS = ['predicate', 'max_retries', 'backoff'];
const BACKOFF_KEYS = ['initial_delay', 'max_delay', 'multiplier'];
const SPECIAL_TARGETS = ['end', 'break', 'continue'];
const ASSIGN_TARGET = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[[^\]]+\])*$/;

export function constructOf(body: StepBody): string {
  return Object.keys(CONSTRUCTS).find((construct) => construct in body) ?? Object.keys(body)[0] ?? '(empty)';
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `- name: {…}` list items into named steps. */
export function stepsOf(list: unknown, where: string): Step[] {
  if (!Array.isArray(list)) throw new UnsupportedError(`${where}: steps must be a list`);
  return list.map((item) => {
    const entries = isMap(item) ? Object.entries(item) : [];
    if (entries.length !== 1 || !isMap(entries[0]![1])) {
      throw new UnsupportedError(`${where}: each step must be a map with one named step`);
    }
    return { name: entries[0]![0], body: entries[0]![1] };
  });
}

export interface CheckOptions {
  /** Names callable with `call:` besides subworkflows (http.*, sys.*, connectors). */
  calls: string[];
  /** Functions usable in expressions. */
  functions: string[];
}

export function loadWorkflow(source: string, options: CheckOptions): Workflow {
  let document: unknown;
  try {
    document = parseYaml(source);
  } catch (error) {
    throw new UnsupportedError(`the definition is not valid YAML: ${(error as Error).message}`);
  }
  const workflow: Workflow = new Map();
  if (Array.isArray(document)) {
    workflow.set('main', { params: [], steps: stepsOf(document, 'main') });
  } else if (isMap(document)) {
    for (const [name, value] of Object.entries(document)) {
      if (!isMap(value)) throw new UnsupportedError(`subworkflow ${name} must be a map with steps`);
      const extra = Object.keys(value).filter((key) => key !== 'params' && key !== 'steps');
      if (extra.length) throw new UnsupportedError(`subworkflow ${name}: '${extra[0]}' is not in the supported subset`);
      workflow.set(name, { params: paramsOf(value.params, name), steps: stepsOf(value.steps, name) });
    }
  } else {
    throw new UnsupportedError('the definition must be a list of steps or a map of subworkflows');
  }
  if (!workflow.has('main')) throw new UnsupportedError('the definition has no main workflow');
  const problems = checkWorkflow(workflow, options);
  if (problems.length) throw new UnsupportedError(problems.join('\n'));
  return workflow;
}

function paramsOf(value: unknown, where: string): Subworkflow['params'] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new UnsupportedError(`subworkflow ${where}: params must be a list`);
  return value.map((param) => {
    if (typeof param === 'string') return { name: param, required: true };
    const entries = isMap(param) ? Object.entries(param) : [];
    if (entries.length !== 1) throw new UnsupportedError(`subworkflow ${where}: a param is a name or {name: default}`);
    return { name: entries[0]![0], default: entries[0]![1], required: false };
  });
}

/** Every problem in the definition, each naming subworkflow, step and construct. */
export function checkWorkflow(workflow: Workflow, options: CheckOptions): string[] {
  const problems: string[] = [];
  const callable = new Set([...options.calls, ...workflow.keys()]);
  const functions = new Set([...options.functions, ...Object.keys(RETRY_POLICIES)]);

  for (const [subworkflow, { steps }] of workflow) {
    const names = new Set<string>();
    const targets: Array<{ step: string; target: string }> = [];

    const problem = (step: string, construct: string, message: string): void => {
      problems.push(`${subworkflow}/${step}: ${construct}: ${message}`);
    };

    /** Parses every `${…}` inside a value and checks the functions it calls. */
    const expressions = (step: string, construct: string, value: unknown): void => {
      if (typeof value === 'string') {
        try {
          const source = expressionSource(value);
          if (source === undefined) return;
          for (const fn of calledFunctions(parseExpression(source))) {
            if (!functions.has(fn)) problem(step, construct, `function ${fn}() is not in the supported subset`);
          }
        } catch (error) {
          problem(step, construct, (error as Error).message);
        }
      } else if (Array.isArray(value)) {
        value.forEach((item) => expressions(step, construct, item));
      } else if (isMap(value)) {
        Object.entries(value).forEach(([key, item]) => {
          expressions(step, construct, key);
          expressions(step, construct, item);
        });
      }
    };

    const nested = (step: string, construct: string, list: unknown, inParallel: boolean): void => {
      try {
        walk(stepsOf(list, `${subworkflow}/${step}`), inParallel);
      } catch (error) {
        problem(step, construct, (error as Error).message);
      }
    };

    const walk = (list: Step[], inParallel: boolean): void => {
      for (const { name, body } of list) {
        if (names.has(name)) problem(name, 'step', 'step names must be unique within a subworkflow');
        names.add(name);
        const construct = constructOf(body);
        const allowed = CONSTRUCTS[construct];
        if (!allowed) {
          problem(name, construct, 'construct not in the supported subset');
          continue;
        }
        for (const key of Object.keys(body)) {
          if (!allowed.includes(key)) problem(name, construct, `'${key}' is not in the supported subset`);
        }
        if (typeof body.next === 'string') targets.push({ step: name, target: body.next });
        if (inParallel && (construct === 'return' || body.next === 'end')) {
          problem(name, construct, 'return / next: end inside a parallel branch is not in the supported subset');
        }
        checkStep(name, construct, body, inParallel);
      }
    };

    const checkStep = (name: string, construct: string, body: StepBody, inParallel: boolean): void => {
      switch (construct) {
        case 'assign': {
          if (!Array.isArray(body.assign)) return problem(name, construct, 'assign takes a list of {name: value}');
          for (const item of body.assign) {
            const entries = isMap(item) ? Object.entries(item) : [];
            if (entries.length !== 1) problem(name, construct, 'each assignment is one {name: value}');
            for (const [target, value] of entries) {
              if (!ASSIGN_TARGET.test(target)) problem(name, construct, `cannot assign to '${target}'`);
              expressions(name, construct, value);
            }
          }
          return;
        }
        case 'call': {
          const target = body.call;
          if (typeof target !== 'string' || !callable.has(target)) {
            problem(name, construct, `call target ${String(target)} is not in the supported subset`);
          }
          if (body.args !== undefined && !isMap(body.args)) problem(name, construct, 'args must be a map');
          if (body.result !== undefined && typeof body.result !== 'string') {
            problem(name, construct, 'result must be a variable name');
          }
          expressions(name, construct, body.args);
          return;
        }
        case 'switch': {
          if (!Array.isArray(body.switch)) return problem(name, construct, 'switch takes a list of conditions');
          for (const branch of body.switch) {
            if (!isMap(branch) || !('condition' in branch)) {
              problem(name, construct, 'each switch entry needs a condition');
              continue;
            }
            for (const key of Object.keys(branch)) {
              if (!SWITCH_KEYS.includes(key)) problem(name, construct, `'${key}' is not in the supported subset`);
            }
            if (typeof branch.next === 'string') targets.push({ step: name, target: branch.next });
            if (inParallel && ('return' in branch || branch.next === 'end')) {
              problem(name, construct, 'return / next: end inside a parallel branch is not in the supported subset');
            }
            expressions(name, construct, [branch.condition, branch.return, branch.raise]);
            if ('steps' in branch) nested(name, construct, branch.steps, inParallel);
          }
          return;
        }
        case 'for': {
          const loop = body.for;
          if (!isMap(loop)) return problem(name, construct, 'for takes a map');
          for (const key of Object.keys(loop)) {
            if (!FOR_KEYS.includes(key)) problem(name, construct, `'${key}' is not in the supported subset`);
          }
          if (typeof loop.value !== 'string') problem(name, construct, 'for needs a value variable');
          if ('in' in loop === 'range' in loop) problem(name, construct, 'for needs exactly one of in or range');
          expressions(name, construct, [loop.in, loop.range]);
          nested(name, construct, loop.steps, inParallel);
          return;
        }
        case 'parallel': {
          const parallel = body.parallel;
          if (!isMap(parallel)) return problem(name, construct, 'parallel takes a map');
          for (const key of Object.keys(parallel)) {
            if (!PARALLEL_KEYS.includes(key)) problem(name, construct, `'${key}' is not in the supported subset`);
          }
          if (parallel.exception_policy !== undefined && parallel.exception_policy !== 'continueAll') {
            problem(name, construct, 'exception_policy other than continueAll is not in the supported subset');
          }
          if (parallel.shared !== undefined && !Array.isArray(parallel.shared)) {
            problem(name, construct, 'shared must be a list of variable names');
          }
          try {
            for (const branch of stepsOf(parallel.branches, `${subworkflow}/${name}`)) {
              if (Object.keys(branch.body).some((key) => key !== 'steps')) {
                problem(name, construct, `branch ${branch.name} must hold only steps`);
              }
              nested(name, construct, branch.body.steps, true);
            }
          } catch (error) {
            problem(name, construct, (error as Error).message);
          }
          return;
        }
        case 'try': {
          const attempt = body.try;
          if (!isMap(attempt)) return problem(name, construct, 'try takes a step or steps');
          if ('steps' in attempt) nested(name, construct, attempt.steps, inParallel);
          else walk([{ name: `${name}.try`, body: attempt }], inParallel);
          checkRetry(name, body.retry);
          if (body.except !== undefined) {
            const except = body.except;
            if (
              !isMap(except) ||
              typeof except.as !== 'string' ||
              Object.keys(except).some((k) => k !== 'as' && k !== 'steps')
            ) {
              problem(name, construct, 'except takes {as: name, steps: […]}');
            } else {
              nested(name, construct, except.steps, inParallel);
            }
          }
          return;
        }
        case 'raise':
        case 'return':
          expressions(name, construct, body[construct]);
          return;
        case 'steps':
          nested(name, construct, body.steps, inParallel);
          return;
      }
    };

    const checkRetry = (name: string, retry: unknown): void => {
      if (retry === undefined) return;
      if (typeof retry === 'string') {
        const source = expressionSource(retry);
        if (source === undefined || !(source.trim() in RETRY_POLICIES)) {
          problem(name, 'try', `retry policy ${retry} is not in the supported subset`);
        }
        return;
      }
      if (!isMap(retry)) return problem(name, 'try', 'retry must be a policy or a map');
      for (const key of Object.keys(retry)) {
        if (!RETRY_KEYS.includes(key)) problem(name, 'try', `retry '${key}' is not in the supported subset`);
      }
      if (isMap(retry.backoff)) {
        for (const key of Object.keys(retry.backoff)) {
          if (!BACKOFF_KEYS.includes(key)) problem(name, 'try', `backoff '${key}' is not in the supported subset`);
        }
      }
      const predicate = typeof retry.predicate === 'string' ? expressionSource(retry.predicate)?.trim() : undefined;
      if (!predicate || !(functions.has(predicate) || workflow.has(predicate))) {
        problem(name, 'try', `retry predicate ${String(retry.predicate)} is not in the supported subset`);
      }
    };

    walk(steps, false);
    for (const { step, target } of targets) {
      if (!names.has(target) && !SPECIAL_TARGETS.includes(target)) {
        problem(step, 'next', `next target ${target} is not a step of ${subworkflow}`);
      }
    }
  }
  return problems;
}
