/**
 * The interpreter's construct table: one snippet per construct with the result or error Workflows gives,
 * the static check's refusals, and a check that every construct, function and call `workflows/` uses
 * appears in this table.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { createLogger } from '../../lib/log.js';
import { RECONSTRUCT_PATH } from '../../local/reconstruct-workflow.js';
import { WorkflowError, UnsupportedError } from '../../local/workflows/errors.js';
import { calledFunctions, expressionSource, parseExpression } from '../../local/workflows/expression.js';
import { httpCalls } from '../../local/workflows/http.js';
import { Interpreter, type CallTarget } from '../../local/workflows/interpreter.js';

const logged: string[] = [];
const log = createLogger({ level: 'DEBUG', sink: (line) => logged.push(line) });

/** A loopback server whose answers the snippets choose: /status/N answers N, /flaky fails twice with 503. */
let server: Server;
let base: string;
let flakyCalls = 0;
before(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/flaky' && ++flakyCalls <= 2) return res.writeHead(503).end('busy');
    const code = url.pathname.startsWith('/status/') ? Number(url.pathname.slice(8)) : 200;
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          method: req.method,
          query: url.searchParams.get('q'),
          received: body ? (JSON.parse(body) as unknown) : null,
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const echo: CallTarget = (args) => Promise.resolve(args);

function load(yaml: string, calls: Record<string, CallTarget> = {}): Interpreter {
  return Interpreter.load(yaml, {
    calls: { ...httpCalls, 'test.echo': echo, ...calls },
    env: { BASE: base, ZONE: 'local' },
    log,
  });
}

async function run(yaml: string, argument: unknown = null, calls?: Record<string, CallTarget>): Promise<unknown> {
  return load(yaml, calls).run(argument);
}

async function raised(yaml: string, argument: unknown = null): Promise<Record<string, unknown> | string> {
  try {
    await run(yaml, argument);
  } catch (error) {
    if (error instanceof WorkflowError) return error.value as Record<string, unknown>;
    throw error;
  }
  throw new Error('the workflow did not raise');
}

/** `return: '${…}'`, quoted as YAML needs once an expression holds braces or colons. */
const ret = (expression: string) =>
  `main:\n  params: [args]\n  steps:\n    - r:\n        return: '\${${expression}}'\n`;

describe('expressions', () => {
  const cases: Array<[string, unknown, unknown?]> = [
    ['1 + 2 * 3 - 4 / 2', 5],
    ['7 // 2 + 7 % 3', 4],
    ['-3 + 1', -2],
    ['"a" + "b"', 'ab'],
    ['1 < 2 and 2 <= 2 and 3 > 2 and 3 >= 4 == false', true],
    ['"x" in ["x", "y"] and "k" in {"k": 1} and not("z" in ["x"])', true],
    ['true or 1 / 0 == 0', true],
    ['{"a": [10, 20]}.a[1]', 20],
    ['args.list[2]', 3, { list: [1, 2, 3] }],
    ['args["key with space"]', 'v', { 'key with space': 'v' }],
    ['{"a": 1} == {"a": 1} and [1] != [2]', true],
    ['default(null, "d") + default("x", "d")', 'dx'],
    ['map.get(args, "missing") == null and map.get(args, "k") == 1', true, { k: 1 }],
    ['len("abc") + len([1, 2]) + len({"a": 1})', 6],
    ['keys({"a": 1, "b": 2})', ['a', 'b']],
    ['text.split("gs://b/requests/1/", "/")[2]', 'b'],
    ['text.substring("gs://b/requests/", 7, 100)', 'requests/'],
    ['text.url_encode("requests/a b/manifest.json")', 'requests%2Fa%20b%2Fmanifest.json'],
    ['json.decode(json.encode_to_string({"a": [1, true, null]}))', { a: [1, true, null] }],
    ['sys.get_env("ZONE") + string(int("42")) + string(1.5)', 'local421.5'],
    ['sys.get_env("MISSING") == null', true],
    [
      '[get_type({}), get_type([]), get_type("s"), get_type(1), get_type(1.5), get_type(true), get_type(null)]',
      ['map', 'list', 'string', 'integer', 'double', 'boolean', 'null'],
    ],
  ];
  for (const [expression, expected, argument] of cases) {
    it(`${expression} → ${JSON.stringify(expected)}`, async () => {
      assert.deepEqual(await run(ret(expression), argument ?? {}), expected);
    });
  }

  it('sys.now() answers seconds since the epoch', async () => {
    const now = (await run(ret('sys.now()'))) as number;
    assert.ok(Math.abs(now - Date.now() / 1000) < 5);
  });

  const errors: Array<[string, string, RegExp]> = [
    ['{"a": 1}.b', 'KeyError', /key not found: b/],
    ['[1][3]', 'IndexError', /out of range/],
    ['[1][-1]', 'IndexError', /out of range/],
    ['[1] + [2]', 'TypeError', /needs numbers/],
    ['1 + "a"', 'TypeError', /needs numbers/],
    ['1 / 0', 'ZeroDivisionError', /division by zero/],
    ['undefined_variable', 'KeyError', /undefined_variable is not defined/],
    ['json.decode("{")', 'ValueError', /not valid JSON/],
    ['len(1)', 'TypeError', /len/],
  ];
  for (const [expression, tag, message] of errors) {
    it(`${expression} raises ${tag}`, async () => {
      const error = (await raised(ret(expression))) as { tags: string[]; message: string };
      assert.deepEqual(error.tags, [tag]);
      assert.match(error.message, message);
    });
  }
});

describe('steps', () => {
  it('assign copies values, and writes map keys, nested keys and list items', async () => {
    const result = await run(`
- a:
    assign:
      - m: {a: 1}
      - copy: \${m}
      - m.b: 2
      - m["c"]: \${m.a + m.b}
      - m.d.e: 4
      - l: [0, 0]
      - l[1]: 5
- r:
    return: ['\${m}', '\${copy}', '\${l}']
`);
    assert.deepEqual(result, [{ a: 1, b: 2, c: 3, d: { e: 4 } }, { a: 1 }, [0, 5]]);
  });

  it('switch takes the first true condition: next, steps, return, raise; otherwise falls through', async () => {
    const yaml = `
main:
  params: [n]
  steps:
    - s:
        switch:
          - condition: \${n == 1}
            next: one
          - condition: \${n == 2}
            steps:
              - two:
                  return: "two"
          - condition: \${n == 3}
            return: "three"
          - condition: \${n == 4}
            raise: "four"
    - other:
        return: "other"
    - one:
        return: "one"
`;
    assert.equal(await run(yaml, 1), 'one');
    assert.equal(await run(yaml, 2), 'two');
    assert.equal(await run(yaml, 3), 'three');
    assert.equal(await raised(yaml, 4), 'four');
    assert.equal(await run(yaml, 5), 'other');
  });

  it('next jumps to a named step, and next: end ends the workflow with null', async () => {
    assert.equal(
      await run(`\n- a:\n    next: c\n- b:\n    return: "b"\n- c:\n    next: end\n- d:\n    return: "d"\n`),
      null,
    );
  });

  it('for loops over lists, maps and ranges, with index, break and continue; loop writes reach the outer scope', async () => {
    const result = await run(`
- init:
    assign:
      - seen: ""
      - total: 0
- over_list:
    for:
      value: v
      index: i
      in: ["a", "b", "c"]
      steps:
        - skip_b:
            switch:
              - condition: \${v == "b"}
                next: continue
        - add:
            assign:
              - seen: \${seen + v + string(i) + " "}
- over_range:
    for:
      value: n
      range: [1, 10]
      steps:
        - stop:
            switch:
              - condition: \${n > 4}
                next: break
        - sum:
            assign:
              - total: \${total + n}
- over_map:
    for:
      value: k
      in: {"x": 1, "y": 2}
      steps:
        - key:
            assign:
              - seen: \${seen + k + " "}
- r:
    return: ['\${seen}', '\${total}']
`);
    assert.deepEqual(result, ['a0 c2 x y ', 10]);
  });

  it('subworkflows take params with defaults, return values, and see only their own variables', async () => {
    const yaml = `
main:
  steps:
    - a:
        assign:
          - secret: 1
    - c:
        call: add
        args: {x: 2}
        result: sum
    - leak:
        call: peek
        result: peeked
    - r:
        return: \${sum}
add:
  params: [x, {y: 40}]
  steps:
    - r:
        return: \${x + y}
peek:
  steps:
    - r:
        return: \${secret}
`;
    const error = (await raised(yaml)) as { tags: string[] };
    assert.deepEqual(error.tags, ['KeyError']);
    assert.equal(await run(yaml.replace(/ {4}- leak:\n.*\n.*\n/, '')), 42);
  });

  it('call passes evaluated args to a call target and stores its result', async () => {
    assert.deepEqual(
      await run(
        `\n- c:\n    call: test.echo\n    args: {a: '\${1 + 1}', nested: ['\${"x"}']}\n    result: r\n- r:\n    return: \${r}\n`,
      ),
      { a: 2, nested: ['x'] },
    );
  });

  it('sys.log writes a log entry at the given severity; sys.sleep waits', async () => {
    const started = Date.now();
    await run(
      `\n- l:\n    call: sys.log\n    args: {text: "hello from the workflow", severity: WARNING}\n- s:\n    call: sys.sleep\n    args: {seconds: 0.05}\n`,
    );
    assert.ok(Date.now() - started >= 45);
    const entry = logged
      .map((line) => JSON.parse(line) as { severity: string; message: string })
      .find((e) => e.message === 'hello from the workflow');
    assert.equal(entry?.severity, 'WARNING');
  });

  it('raise raises maps and strings; try/except binds the error and continues after the try step', async () => {
    assert.deepEqual(await raised(`- r:\n    raise: {code: 7, message: "boom"}\n`), { code: 7, message: 'boom' });
    const result = await run(`
- t:
    try:
      steps:
        - fail:
            raise: {code: 7, message: "boom"}
    except:
      as: e
      steps:
        - note:
            assign:
              - caught: \${e.code}
- r:
    return: \${caught}
`);
    assert.equal(result, 7);
  });
});

/** A workflow whose try step counts its attempts and raises `error` each time; except answers the count. */
const counting = (error: string, retry: string, subworkflows = '') => `
main:
  steps:
    - init:
        assign:
          - attempts: 0
    - t:
        try:
          steps:
            - count:
                assign:
                  - attempts: \${attempts + 1}
            - fail:
                raise: ${error}
        retry:
          ${retry.trim().replace(/\n/g, '\n          ')}
        except:
          as: e
          steps:
            - r:
                return: \${attempts}
${subworkflows}`;

describe('retries', () => {
  it('retries with backoff while a custom predicate says so, then gives up with the error', async () => {
    const yaml = counting(
      `{code: '\${attempts}'}`,
      `
predicate: \${below_three}
max_retries: 5
backoff: {initial_delay: 0.05, max_delay: 1, multiplier: 2}`,
      `below_three:
  params: [e]
  steps:
    - r:
        return: \${e.code < 3}
`,
    );
    const started = Date.now();
    assert.equal(await run(yaml), 3, 'two retries, the third error is not retried');
    assert.ok(Date.now() - started >= 140, 'waited 0.05 s then 0.1 s');
  });

  it('max_retries bounds the attempts', async () => {
    const yaml = counting(
      '{code: 503, tags: ["HttpError"]}',
      `
predicate: \${http.default_retry_predicate}
max_retries: 2
backoff: {initial_delay: 0.01, max_delay: 0.01, multiplier: 1}`,
    );
    assert.equal(await run(yaml), 3);
  });

  it('http.default_retry retries a 503 from a real server until it answers', async () => {
    flakyCalls = 0;
    const result = (await run(`
- t:
    try:
      call: http.get
      args:
        url: \${sys.get_env("BASE") + "/flaky"}
      result: response
    retry: \${http.default_retry}
- r:
    return: \${response.code}
`)) as number;
    assert.equal(result, 200);
    assert.equal(flakyCalls, 3);
  });

  const predicate: Array<[string, unknown, boolean]> = [
    ['429', { code: 429, tags: ['HttpError'] }, true],
    ['502', { code: 502, tags: ['HttpError'] }, true],
    ['504', { code: 504, tags: ['HttpError'] }, true],
    ['404', { code: 404, tags: ['HttpError'] }, false],
    ['500', { code: 500, tags: ['HttpError'] }, false],
    ['ConnectionError', { tags: ['ConnectionError'] }, true],
    ['TimeoutError', { tags: ['TimeoutError'] }, true],
    ['OperationError (a failed job)', { tags: ['OperationError'] }, false],
  ];
  for (const [name, error, expected] of predicate) {
    it(`http.default_retry_predicate: ${name} → ${expected}`, async () => {
      assert.equal(await run(ret('http.default_retry_predicate(args)'), error), expected);
    });
  }

  // Only errors that prove the request was not acted on (the jobs.run start relies on it).
  const nonIdempotent: Array<[string, unknown, boolean]> = [
    ['429', { code: 429, tags: ['HttpError'] }, true],
    ['503', { code: 503, tags: ['HttpError'] }, true],
    ['502', { code: 502, tags: ['HttpError'] }, false],
    ['504', { code: 504, tags: ['HttpError'] }, false],
    ['ConnectionFailedError', { tags: ['ConnectionFailedError'] }, true],
    ['ConnectionError', { tags: ['ConnectionError'] }, false],
    ['TimeoutError', { tags: ['TimeoutError'] }, false],
  ];
  for (const [name, error, expected] of nonIdempotent) {
    it(`http.default_retry_predicate_non_idempotent: ${name} → ${expected}`, async () => {
      assert.equal(await run(ret('http.default_retry_predicate_non_idempotent(args)'), error), expected);
    });
  }
});

describe('http calls', () => {
  it('http.put sends a JSON body and query, and answers {code, headers, body}', async () => {
    const result = (await run(`
- c:
    call: http.put
    args:
      url: \${sys.get_env("BASE") + "/status/200"}
      query: {q: "yes"}
      auth: {type: OIDC}
      body: {status: "PROCESSING"}
    result: response
- r:
    return: \${response}
`)) as { code: number; headers: Record<string, string>; body: unknown };
    assert.equal(result.code, 200);
    assert.equal(result.headers['content-type'], 'application/json');
    assert.deepEqual(result.body, { method: 'PUT', query: 'yes', received: { status: 'PROCESSING' } });
  });

  it('a non-2xx answer raises HttpError with code and body', async () => {
    const error = (await raised(
      `- c:\n    call: http.get\n    args: {url: '\${sys.get_env("BASE") + "/status/409"}'}\n`,
    )) as Record<string, unknown>;
    assert.deepEqual(error.tags, ['HttpError']);
    assert.equal(error.code, 409);
    assert.equal((error.body as { method: string }).method, 'GET');
  });

  it('an unreachable server raises ConnectionError', async () => {
    const error = (await raised(`- c:\n    call: http.get\n    args: {url: "http://127.0.0.1:1/"}\n`)) as Record<
      string,
      unknown
    >;
    assert.deepEqual(error.tags, ['ConnectionError']);
  });
});

describe('parallel', () => {
  it('branches run concurrently and write shared variables; their own variables stay local', async () => {
    const started = Date.now();
    const result = await run(`
- init:
    assign:
      - results: {}
      - order: ""
- p:
    parallel:
      shared: [results, order]
      branches:
        - slow:
            steps:
              - wait:
                  call: sys.sleep
                  args: {seconds: 0.2}
              - local:
                  assign:
                    - mine: "slow"
              - write:
                  assign:
                    - results.slow: \${mine}
                    - order: \${order + "slow "}
        - fast:
            steps:
              - write_fast:
                  assign:
                    - results.fast: "fast"
                    - order: \${order + "fast "}
- r:
    return: ['\${results}', '\${order}', '\${map.get({}, "mine")}']
`);
    assert.deepEqual(result, [{ slow: 'slow', fast: 'fast' }, 'fast slow ', null]);
    assert.ok(Date.now() - started < 400);
  });

  it('writing an unshared outer variable in a branch is an error', async () => {
    const error = (await raised(`
- init:
    assign:
      - outer: 1
- p:
    parallel:
      branches:
        - b:
            steps:
              - write:
                  assign:
                    - outer: 2
`)) as { message: string };
    assert.match(error.message, /outer .* not shared/);
  });

  it('a failing branch lets the others finish (continueAll), then raises its error', async () => {
    const error = await raised(`
- init:
    assign:
      - done: false
- p:
    parallel:
      shared: [done]
      branches:
        - failing:
            steps:
              - fail:
                  raise: "branch failed"
        - slow:
            steps:
              - wait:
                  call: sys.sleep
                  args: {seconds: 0.1}
              - finish:
                  assign:
                    - done: true
`);
    assert.equal(error, 'branch failed');
  });
});

describe('static check', () => {
  const refusals: Array<[string, string, RegExp]> = [
    ['an unknown construct', `- s:\n    wait: 5\n`, /main\/s: wait: construct not in the supported subset/],
    [
      'an unknown key on a step',
      `- s:\n    call: test.echo\n    timeout: 5\n`,
      /main\/s: call: 'timeout' is not in the supported subset/,
    ],
    [
      'an unknown call target',
      `- s:\n    call: googleapis.compute.v1.instances.insert\n`,
      /main\/s: call: call target googleapis.compute.v1.instances.insert/,
    ],
    [
      'an unknown function',
      `- s:\n    return: \${math.floor(1.5)}\n`,
      /main\/s: return: function math.floor\(\) is not in the supported subset/,
    ],
    [
      'a function nested in args',
      `- s:\n    call: test.echo\n    args: {a: ['\${list.concat([], 1)}']}\n`,
      /main\/s: call: function list.concat\(\)/,
    ],
    ['partial interpolation', `- s:\n    return: "id-\${1}"\n`, /main\/s: return: partial interpolation/],
    [
      'a parallel for',
      `- p:\n    parallel:\n      for:\n        value: v\n        in: [1]\n        steps: []\n`,
      /main\/p: parallel: 'for' is not in the supported subset/,
    ],
    [
      'return inside a branch',
      `- p:\n    parallel:\n      branches:\n        - b:\n            steps:\n              - r:\n                  return: 1\n`,
      /main\/r: return: return \/ next: end inside a parallel branch/,
    ],
    ['a missing next target', `- s:\n    next: nowhere\n`, /main\/s: next: next target nowhere is not a step of main/],
    [
      'duplicate step names',
      `- s:\n    assign: [{a: 1}]\n- s:\n    assign: [{a: 2}]\n`,
      /main\/s: step: step names must be unique/,
    ],
    [
      'an unknown retry policy',
      `- t:\n    try:\n      call: test.echo\n    retry: \${retry.never_heard_of}\n`,
      /main\/t: try: retry policy/,
    ],
    [
      'an unknown backoff key',
      `- t:\n    try:\n      call: test.echo\n    retry:\n      predicate: \${http.default_retry_predicate}\n      backoff: {jitter: 1}\n`,
      /main\/t: try: backoff 'jitter'/,
    ],
    ['an expression syntax error', `- s:\n    return: \${1 +}\n`, /main\/s: return: unexpected end of expression/],
    [
      'an except without as',
      `- t:\n    try:\n      call: test.echo\n    except:\n      steps: []\n`,
      /main\/t: try: except takes/,
    ],
    ['no main', `other:\n  steps:\n    - r:\n        return: 1\n`, /no main workflow/],
  ];
  for (const [name, yaml, message] of refusals) {
    it(`refuses ${name} before running anything, naming the step and construct`, () => {
      assert.throws(
        () => load(yaml, {}),
        (error: Error) => error instanceof UnsupportedError && message.test(error.message),
      );
    });
  }

  it('reports every problem at once', () => {
    assert.throws(
      () => load(`- a:\n    wait: 1\n- b:\n    return: \${nope()}\n`),
      (error: Error) => error.message.split('\n').length === 2,
    );
  });
});

describe('coverage of workflows/', () => {
  /** The constructs, functions and call targets a definition uses. */
  function inventory(yaml: string): Set<string> {
    const found = new Set<string>();
    const visit = (node: unknown, key?: string): void => {
      if (typeof node === 'string') {
        const source = (() => {
          try {
            return expressionSource(node);
          } catch {
            return undefined;
          }
        })();
        if (source) for (const fn of calledFunctions(parseExpression(source))) found.add(`function ${fn}`);
        if (source && source.trim() in { 'http.default_retry': 1, 'http.default_retry_predicate': 1 })
          found.add(`function ${source.trim()}`);
        if (key === 'call') found.add(`call ${subworkflows.has(node) ? '(a subworkflow)' : node}`);
        return;
      }
      if (Array.isArray(node)) return node.forEach((item) => visit(item));
      if (typeof node !== 'object' || node === null) return;
      for (const [name, value] of Object.entries(node)) {
        if (
          [
            'assign',
            'call',
            'switch',
            'for',
            'parallel',
            'try',
            'retry',
            'except',
            'raise',
            'return',
            'next',
            'steps',
            'shared',
            'params',
          ].includes(name)
        ) {
          found.add(`construct ${name}`);
        }
        visit(value, name);
      }
    };
    const document: unknown = parseYaml(yaml);
    const subworkflows = new Set(Array.isArray(document) ? [] : Object.keys(document as object));
    visit(document);
    return found;
  }

  it('every construct, function and call the workflow uses appears in this table', () => {
    const self = readFileSync(new URL(import.meta.url), 'utf8');
    const table = new Set<string>();
    for (const match of self.matchAll(/`([^`]*)`/g)) {
      try {
        for (const item of inventory(match[1]!.replace(/\\\$/g, '$').replace(/\\n/g, '\n'))) table.add(item);
      } catch {
        // not a snippet
      }
    }
    for (const match of self.matchAll(/'([^'\n]*\([^'\n]*)'/g)) {
      try {
        for (const fn of calledFunctions(parseExpression(match[1]!))) table.add(`function ${fn}`);
      } catch {
        // a test name, not an expression
      }
    }
    // The connectors are exercised end to end by reconstruct.test.ts (and the launcher's by launcher.test.ts).
    const connectors = [
      'call googleapis.run.v2.projects.locations.jobs.run',
      'call googleapis.run.v2.projects.locations.jobs.executions.get',
      'call googleapis.run.v2.projects.locations.jobs.executions.cancel',
      'call googleapis.storage.v1.objects.get',
    ];
    const missing = [...inventory(readFileSync(RECONSTRUCT_PATH, 'utf8'))].filter(
      (item) => !table.has(item) && !connectors.includes(item),
    );
    assert.deepEqual(missing, []);
  });
});
