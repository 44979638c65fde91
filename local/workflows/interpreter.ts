/**
 * Runs a checked Workflows definition (see definition.ts) with Workflows' semantics: value-copying
 * variables, subworkflow scopes, jumps, retries with backoff, parallel branches that may write only
 * `shared` variables, errors as maps. Calls to the outside world (http, connectors) are injected.
 */
import { logAt, type Logger } from '../../lib/log.js';
import { loadWorkflow, stepsOf, constructOf, type Step, type StepBody, type Workflow } from './definition.js';
import { fault, WorkflowError, type Value } from './errors.js';
import { expressionSource, parseExpression, type Expr } from './expression.js';
import { RETRY_POLICIES, standardLibrary, typeName, type Backoff, type ExpressionFunction } from './stdlib.js';

/** A `call:` target other than a subworkflow. Failures throw WorkflowError with a Workflows error map. */
export type CallTarget = (args: Record<string, Value>) => Promise<Value>;

export interface RuntimeOptions {
  /** http.*, connectors (sys.log and sys.sleep are built in). */
  calls: Record<string, CallTarget>;
  /** What `sys.get_env` answers. */
  env?: Record<string, string>;
  log: Logger;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

const BUILTIN_CALLS = ['sys.log', 'sys.sleep'];

/** Ends a step list early: a jump to a named step, the end of a (sub)workflow, or a loop control. */
class Jump extends Error {
  constructor(readonly target: string) {
    super(`jump to ${target}`);
  }
}
/** The execution was cancelled: unwinds every step, past any `try` (Workflows cannot catch it either). */
export class CancelledError extends Error {
  override name = 'CancelledError';
}
class Return extends Error {
  constructor(readonly value: Value) {
    super('return');
  }
}

class Scope {
  private readonly vars = new Map<string, Value>();
  constructor(
    private readonly parent?: Scope,
    /** Parent variables this scope may write; `all` for loop bodies, a list for parallel branches. */
    private readonly writable: 'all' | Set<string> = new Set(),
  ) {}

  has(name: string): boolean {
    return this.vars.has(name) || (this.parent?.has(name) ?? false);
  }

  get(name: string): Value {
    if (this.vars.has(name)) return this.vars.get(name);
    if (this.parent) return this.parent.get(name);
    throw fault('KeyError', `variable ${name} is not defined`);
  }

  /** The scope that owns `name` for a write; a branch may not write its parent's unshared variables. */
  owner(name: string): Scope {
    if (this.vars.has(name) || !this.parent?.has(name)) return this;
    if (this.writable === 'all' || this.writable.has(name)) return this.parent.owner(name);
    throw fault('TypeError', `variable ${name} belongs to the enclosing scope and is not shared with this branch`);
  }

  set(name: string, value: Value): void {
    const owner = this.owner(name);
    owner.vars.set(name, value);
  }
}

function isMap(value: Value): value is Record<string, Value> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function copy<T>(value: T): T {
  return value === undefined ? value : structuredClone(value);
}

function equal(a: Value, b: Value): boolean {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return a === b;
  return JSON.stringify(a) === JSON.stringify(b);
}

function number(op: string, value: Value): number {
  if (typeof value !== 'number') throw fault('TypeError', `operator ${op} needs numbers, got ${typeName(value)}`);
  return value;
}

function boolean(op: string, value: Value): boolean {
  if (typeof value !== 'boolean') throw fault('TypeError', `operator ${op} needs booleans, got ${typeName(value)}`);
  return value;
}

export class Interpreter {
  private readonly functions: Record<string, ExpressionFunction>;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly parsed = new Map<string, Expr>();

  private constructor(
    private readonly workflow: Workflow,
    private readonly options: RuntimeOptions,
    private readonly signal?: AbortSignal,
  ) {
    this.functions = standardLibrary({ env: options.env ?? {}, now: options.now ?? Date.now });
    const sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.sleep = signal
      ? (ms) =>
          new Promise<void>((resolve, reject) => {
            const cancelled = () => reject(new CancelledError('the execution was cancelled'));
            if (signal.aborted) return cancelled();
            signal.addEventListener('abort', cancelled, { once: true });
            void sleep(ms).then(() => {
              signal.removeEventListener('abort', cancelled);
              resolve();
            });
          })
      : sleep;
  }

  /** Loads and statically checks a definition against what these options can run. */
  static load(source: string, options: RuntimeOptions): Interpreter {
    const workflow = loadWorkflow(source, {
      calls: [...BUILTIN_CALLS, ...Object.keys(options.calls)],
      functions: Object.keys(standardLibrary({ env: {}, now: Date.now })),
    });
    return new Interpreter(workflow, options);
  }

  /**
   * Runs `main` with the execution argument; resolves to its result, rejects with WorkflowError, or with
   * CancelledError once `signal` aborts (checked before every step and during sys.sleep).
   */
  async run(argument: Value = null, signal?: AbortSignal): Promise<Value> {
    if (signal) return new Interpreter(this.workflow, this.options, signal).run(argument);
    const main = this.workflow.get('main')!;
    const args = main.params.length ? { [main.params[0]!.name]: argument } : {};
    return this.callSubworkflow('main', args);
  }

  private async callSubworkflow(name: string, args: Record<string, Value>): Promise<Value> {
    const subworkflow = this.workflow.get(name)!;
    const scope = new Scope();
    for (const param of subworkflow.params) {
      if (param.name in args) scope.set(param.name, copy(args[param.name]));
      else if (!param.required) scope.set(param.name, copy(param.default));
      else throw fault('TypeError', `${name}: missing argument ${param.name}`);
    }
    const unknown = Object.keys(args).filter((arg) => !subworkflow.params.some((param) => param.name === arg));
    if (unknown.length) throw fault('TypeError', `${name}: unexpected argument ${unknown[0]}`);
    try {
      await this.runSteps(subworkflow.steps, scope);
      return null;
    } catch (signal) {
      if (signal instanceof Return) return signal.value;
      if (signal instanceof Jump && signal.target === 'end') return null;
      throw signal;
    }
  }

  /** Runs a step list; a jump to a step of this list continues there, any other leaves it. */
  private async runSteps(steps: Step[], scope: Scope): Promise<void> {
    let i = 0;
    while (i < steps.length) {
      let target: string | undefined;
      try {
        target = await this.runStep(steps[i]!, scope);
      } catch (signal) {
        if (!(signal instanceof Jump)) throw signal;
        target = signal.target;
      }
      if (target === undefined) {
        i++;
        continue;
      }
      const index = steps.findIndex((step) => step.name === target);
      if (index < 0) throw new Jump(target);
      i = index;
    }
  }

  /** Runs one step; answers the step to jump to, if any. */
  private async runStep({ name, body }: Step, scope: Scope): Promise<string | undefined> {
    if (this.signal?.aborted) throw new CancelledError('the execution was cancelled');
    const next = body.next as string | undefined;
    switch (constructOf(body)) {
      case 'assign':
        for (const item of body.assign as Array<Record<string, unknown>>) {
          for (const [target, value] of Object.entries(item)) this.assign(target, this.value(value, scope), scope);
        }
        return next;
      case 'call': {
        const result = await this.call(
          body.call as string,
          this.value(body.args ?? {}, scope) as Record<string, Value>,
        );
        if (typeof body.result === 'string') scope.set(body.result, copy(result));
        return next;
      }
      case 'switch':
        for (const branch of body.switch as Array<Record<string, unknown>>) {
          if (!boolean('switch condition', this.value(branch.condition, scope))) continue;
          if ('steps' in branch) await this.runSteps(stepsOf(branch.steps, name), scope);
          if ('raise' in branch) throw new WorkflowError(this.value(branch.raise, scope));
          if ('return' in branch) throw new Return(this.value(branch.return, scope));
          return (branch.next as string | undefined) ?? next;
        }
        return next;
      case 'for':
        await this.loop(name, body.for as Record<string, unknown>, scope);
        return next;
      case 'parallel':
        await this.parallel(name, body.parallel as Record<string, unknown>, scope);
        return next;
      case 'try':
        await this.attempt(name, body, scope);
        return next;
      case 'raise':
        throw new WorkflowError(this.value(body.raise, scope));
      case 'return':
        throw new Return(this.value(body.return, scope));
      case 'steps':
        await this.runSteps(stepsOf(body.steps, name), scope);
        return next;
      default:
        return next;
    }
  }

  private async call(target: string, args: Record<string, Value>): Promise<Value> {
    if (this.workflow.has(target)) return this.callSubworkflow(target, args);
    if (target === 'sys.log') {
      const message = typeof args.text === 'string' ? args.text : JSON.stringify(args.data ?? args.json ?? null);
      logAt(this.options.log, args.severity, message, { source: 'sys.log' });
      return null;
    }
    if (target === 'sys.sleep') {
      await this.sleep(number('sys.sleep', args.seconds) * 1000);
      return null;
    }
    return this.options.calls[target]!(args);
  }

  private async loop(name: string, loop: Record<string, unknown>, scope: Scope): Promise<void> {
    let items: Value[];
    if ('range' in loop) {
      const range = this.value(loop.range, scope);
      if (!Array.isArray(range) || range.length !== 2) throw fault('TypeError', `${name}: range must be [from, to]`);
      const [from, to] = [number('range', range[0]), number('range', range[1])];
      items = Array.from({ length: Math.max(0, Math.floor(to - from) + 1) }, (_, i) => from + i);
    } else {
      const list = this.value(loop.in, scope);
      if (Array.isArray(list)) items = list;
      else if (isMap(list)) items = Object.keys(list);
      else throw fault('TypeError', `${name}: for … in needs a list or map, got ${typeName(list)}`);
    }
    const steps = stepsOf(loop.steps, name);
    for (const [index, item] of items.entries()) {
      const body = new Scope(scope, 'all');
      body.set(loop.value as string, copy(item));
      if (typeof loop.index === 'string') body.set(loop.index, index);
      try {
        await this.runSteps(steps, body);
      } catch (signal) {
        if (signal instanceof Jump && signal.target === 'continue') continue;
        if (signal instanceof Jump && signal.target === 'break') break;
        throw signal;
      }
    }
  }

  /** Branches run concurrently; with `continueAll` every branch finishes before the first error is raised. */
  private async parallel(name: string, parallel: Record<string, unknown>, scope: Scope): Promise<void> {
    const shared = new Set((parallel.shared as string[] | undefined) ?? []);
    for (const variable of shared) {
      if (!scope.has(variable)) throw fault('KeyError', `${name}: shared variable ${variable} is not defined`);
    }
    const branches = stepsOf(parallel.branches, name);
    const outcomes = await Promise.allSettled(
      branches.map(async (branch) => {
        await Promise.resolve();
        await this.runSteps(stepsOf(branch.body.steps, branch.name), new Scope(scope, shared));
      }),
    );
    const failure = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    if (failure) throw failure.reason;
  }

  private async attempt(name: string, body: StepBody, scope: Scope): Promise<void> {
    const attempt = body.try as StepBody;
    const steps = 'steps' in attempt ? stepsOf(attempt.steps, name) : [{ name, body: attempt }];
    const policy = this.retryPolicy(body.retry, scope);
    let delay = policy?.backoff.initial_delay ?? 0;
    for (let retries = 0; ; retries++) {
      try {
        await this.runSteps(steps, scope);
        return;
      } catch (error) {
        if (!(error instanceof WorkflowError)) throw error;
        if (policy && retries < policy.max_retries && (await this.retryable(policy.predicate, error.value))) {
          this.options.log.debug('retrying', { step: name, retry: retries + 1, delay_seconds: delay });
          await this.sleep(delay * 1000);
          delay = Math.min(delay * policy.backoff.multiplier, policy.backoff.max_delay);
          continue;
        }
        const except = body.except as { as: string; steps: unknown } | undefined;
        if (!except) throw error;
        scope.set(except.as, copy(error.value));
        await this.runSteps(stepsOf(except.steps, name), scope);
        return;
      }
    }
  }

  private retryPolicy(
    retry: unknown,
    scope: Scope,
  ): { predicate: string; max_retries: number; backoff: Backoff } | undefined {
    if (retry === undefined) return undefined;
    if (typeof retry === 'string') return RETRY_POLICIES[expressionSource(retry)!.trim()]!;
    const policy = retry as Record<string, unknown>;
    const backoff = (this.value(policy.backoff ?? {}, scope) ?? {}) as Partial<Backoff>;
    return {
      predicate: expressionSource(policy.predicate as string)!.trim(),
      max_retries: number('max_retries', this.value(policy.max_retries ?? 0, scope)),
      backoff: { initial_delay: 1, max_delay: 60, multiplier: 1.25, ...backoff },
    };
  }

  private async retryable(predicate: string, error: Value): Promise<boolean> {
    const result = this.workflow.has(predicate)
      ? await this.callSubworkflow(predicate, { [this.workflow.get(predicate)!.params[0]!.name]: error })
      : this.functions[predicate]!([error]);
    return boolean('retry predicate', result);
  }

  /** Evaluates every `${…}` inside a YAML value. */
  private value(value: unknown, scope: Scope): Value {
    if (typeof value === 'string') {
      const source = expressionSource(value);
      return source === undefined ? value : this.evaluate(this.expression(source), scope);
    }
    if (Array.isArray(value)) return value.map((item) => this.value(item, scope));
    if (isMap(value)) {
      return Object.fromEntries(
        Object.entries(value).map(([key, item]) => [this.value(key, scope), this.value(item, scope)]),
      );
    }
    return value;
  }

  private expression(source: string): Expr {
    let expr = this.parsed.get(source);
    if (!expr) {
      expr = parseExpression(source);
      this.parsed.set(source, expr);
    }
    return expr;
  }

  /** `a`, `a.b`, `a["b"]`, `a[0]`: walks to the container and writes the last key. */
  private assign(target: string, value: Value, scope: Scope): void {
    const path = this.expression(target);
    if (path.k === 'var') return scope.set(path.name, copy(value));
    const keys: Value[] = [];
    let node: Expr = path;
    while (node.k === 'member' || node.k === 'index') {
      keys.unshift(node.k === 'member' ? node.name : this.evaluate(node.index, scope));
      node = node.obj;
    }
    if (node.k !== 'var') throw fault('TypeError', `cannot assign to ${target}`);
    const owner = scope.owner(node.name);
    let container = owner.get(node.name);
    for (const [i, key] of keys.entries()) {
      const last = i === keys.length - 1;
      if (Array.isArray(container) && typeof key === 'number') {
        if (key < 0 || key >= container.length) throw fault('IndexError', `index ${key} out of range in ${target}`);
        if (last) container[key] = copy(value);
        else container = container[key];
      } else if (isMap(container) && typeof key === 'string') {
        if (last) container[key] = copy(value);
        else container = container[key] ??= {};
      } else {
        throw fault('TypeError', `cannot assign into ${typeName(container)} in ${target}`);
      }
    }
  }

  private evaluate(expr: Expr, scope: Scope): Value {
    switch (expr.k) {
      case 'lit':
        return expr.v;
      case 'var':
        return scope.get(expr.name);
      case 'member':
        return this.key(this.evaluate(expr.obj, scope), expr.name);
      case 'index':
        return this.key(this.evaluate(expr.obj, scope), this.evaluate(expr.index, scope));
      case 'call':
        return this.functions[expr.fn]!(expr.args.map((arg) => this.evaluate(arg, scope)));
      case 'list':
        return expr.items.map((item) => this.evaluate(item, scope));
      case 'map':
        return Object.fromEntries(
          expr.entries.map(([key, item]) => [this.evaluate(key, scope), this.evaluate(item, scope)]),
        );
      case 'unary': {
        const value = this.evaluate(expr.arg, scope);
        return expr.op === 'not' ? !boolean('not', value) : -number('-', value);
      }
      case 'binary':
        return this.binary(expr.op, expr.left, expr.right, scope);
    }
  }

  private key(container: Value, key: Value): Value {
    if (Array.isArray(container)) {
      if (typeof key !== 'number') throw fault('TypeError', `list index must be a number, got ${typeName(key)}`);
      if (key < 0 || key >= container.length) throw fault('IndexError', `list index ${key} out of range`);
      return container[key];
    }
    if (isMap(container)) {
      if (typeof key !== 'string') throw fault('TypeError', `map key must be a string, got ${typeName(key)}`);
      if (!Object.hasOwn(container, key)) throw fault('KeyError', `key not found: ${key}`);
      return container[key];
    }
    throw fault('TypeError', `cannot read ${JSON.stringify(key)} of ${typeName(container)}`);
  }

  private binary(op: string, leftExpr: Expr, rightExpr: Expr, scope: Scope): Value {
    const left = this.evaluate(leftExpr, scope);
    if (op === 'and') return boolean(op, left) && boolean(op, this.evaluate(rightExpr, scope));
    if (op === 'or') return boolean(op, left) || boolean(op, this.evaluate(rightExpr, scope));
    const right = this.evaluate(rightExpr, scope);
    switch (op) {
      case '==':
        return equal(left, right);
      case '!=':
        return !equal(left, right);
      case 'in':
        if (Array.isArray(right)) return right.some((item) => equal(item, left));
        if (isMap(right)) return typeof left === 'string' && Object.hasOwn(right, left);
        throw fault('TypeError', `operator in needs a list or map, got ${typeName(right)}`);
      case '+':
        if (typeof left === 'string' && typeof right === 'string') return left + right;
        return number(op, left) + number(op, right);
      case '<':
      case '>':
      case '<=':
      case '>=': {
        const comparable =
          (typeof left === 'string' && typeof right === 'string') ||
          (typeof left === 'number' && typeof right === 'number');
        if (!comparable)
          throw fault('TypeError', `operator ${op} cannot compare ${typeName(left)} and ${typeName(right)}`);
        return op === '<' ? left < right : op === '>' ? left > right : op === '<=' ? left <= right : left >= right;
      }
    }
    const [a, b] = [number(op, left), number(op, right)];
    if ((op === '/' || op === '//' || op === '%') && b === 0) throw fault('ZeroDivisionError', 'division by zero');
    if (op === '-') return a - b;
    if (op === '*') return a * b;
    if (op === '/') return a / b;
    if (op === '//') return Math.floor(a / b);
    return a - b * Math.floor(a / b);
  }
}
