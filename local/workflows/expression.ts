/**
 * The `${…}` expression language: a tokenizer and a precedence-climbing parser into a small AST.
 * Evaluation lives in the interpreter, which owns variables and the standard library.
 */
import { UnsupportedError } from './errors.js';

export type Expr =
  | { k: 'lit'; v: unknown }
  | { k: 'var'; name: string }
  | { k: 'member'; obj: Expr; name: string }
  | { k: 'index'; obj: Expr; index: Expr }
  | { k: 'call'; fn: string; args: Expr[] }
  | { k: 'unary'; op: 'not' | '-'; arg: Expr }
  | { k: 'binary'; op: string; left: Expr; right: Expr }
  | { k: 'list'; items: Expr[] }
  | { k: 'map'; entries: Array<[Expr, Expr]> };

type Token = { t: 'num' | 'str' | 'id' | 'op'; v: string };

const OPERATORS = [
  '==',
  '!=',
  '<=',
  '>=',
  '//',
  '<',
  '>',
  '+',
  '-',
  '*',
  '/',
  '%',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  ',',
  ':',
  '.',
];

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/.exec(source.slice(i))!;
      tokens.push({ t: 'num', v: m[0] });
      i += m[0].length;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let text = '';
      while (j < source.length && source[j] !== c) {
        if (source[j] === '\\') {
          const escaped = source[j + 1];
          text += escaped === 'n' ? '\n' : escaped === 't' ? '\t' : (escaped ?? '');
          j += 2;
        } else {
          text += source[j];
          j++;
        }
      }
      if (j >= source.length) throw new UnsupportedError(`unterminated string in expression ${source}`);
      tokens.push({ t: 'str', v: text });
      i = j + 1;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i))!;
      tokens.push({ t: 'id', v: m[0] });
      i += m[0].length;
    } else {
      const op = OPERATORS.find((candidate) => source.startsWith(candidate, i));
      if (!op) throw new UnsupportedError(`unexpected character '${c}' in expression ${source}`);
      tokens.push({ t: 'op', v: op });
      i += op.length;
    }
  }
  return tokens;
}

/** Binary operators from loosest to tightest binding. */
const LEVELS: string[][] = [
  ['or'],
  ['and'],
  ['==', '!=', '<', '>', '<=', '>=', 'in'],
  ['+', '-'],
  ['*', '/', '%', '//'],
];

/** `a.b.c` as a dotted name, when the chain is made of names only (a function or policy reference). */
export function dottedName(expr: Expr): string | undefined {
  if (expr.k === 'var') return expr.name;
  if (expr.k === 'member') {
    const head = dottedName(expr.obj);
    return head === undefined ? undefined : `${head}.${expr.name}`;
  }
  return undefined;
}

export function parseExpression(source: string): Expr {
  const tokens = tokenize(source);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const isOp = (v: string): boolean => peek()?.t === 'op' && peek()?.v === v;
  const isWord = (v: string): boolean => peek()?.t === 'id' && peek()?.v === v;
  const expect = (v: string): void => {
    if (!isOp(v)) throw new UnsupportedError(`expected '${v}' in expression ${source}`);
    pos++;
  };

  const binary = (level: number): Expr => {
    if (level === LEVELS.length) return unary();
    let left = binary(level + 1);
    for (;;) {
      const token = peek();
      const op =
        token && (token.t === 'op' || token.t === 'id') && LEVELS[level]!.includes(token.v) ? token.v : undefined;
      if (!op) return left;
      pos++;
      left = { k: 'binary', op, left, right: binary(level + 1) };
    }
  };

  const unary = (): Expr => {
    if (isWord('not')) {
      pos++;
      // `not` binds looser than comparisons in Workflows: `not a == b` is `not (a == b)`.
      return { k: 'unary', op: 'not', arg: binary(2) };
    }
    if (isOp('-')) {
      pos++;
      return { k: 'unary', op: '-', arg: unary() };
    }
    return postfix(primary());
  };

  const list = <T>(close: string, item: () => T): T[] => {
    const items: T[] = [];
    while (!isOp(close)) {
      items.push(item());
      if (!isOp(close)) expect(',');
    }
    pos++;
    return items;
  };

  const postfix = (start: Expr): Expr => {
    let expr = start;
    for (;;) {
      if (isOp('.')) {
        pos++;
        const name = peek();
        if (name?.t !== 'id') throw new UnsupportedError(`expected a name after '.' in expression ${source}`);
        pos++;
        expr = { k: 'member', obj: expr, name: name.v };
      } else if (isOp('[')) {
        pos++;
        const index = binary(0);
        expect(']');
        expr = { k: 'index', obj: expr, index };
      } else if (isOp('(')) {
        const fn = dottedName(expr);
        if (fn === undefined) throw new UnsupportedError(`only named functions can be called in expression ${source}`);
        pos++;
        expr = { k: 'call', fn, args: list(')', () => binary(0)) };
      } else {
        return expr;
      }
    }
  };

  const primary = (): Expr => {
    const token = peek();
    if (!token) throw new UnsupportedError(`unexpected end of expression ${source}`);
    pos++;
    if (token.t === 'num') return { k: 'lit', v: Number(token.v) };
    if (token.t === 'str') return { k: 'lit', v: token.v };
    if (token.t === 'id') {
      const literal: Record<string, unknown> = { true: true, false: false, null: null, True: true, False: false };
      if (token.v in literal) return { k: 'lit', v: literal[token.v] };
      return { k: 'var', name: token.v };
    }
    if (token.v === '(') {
      const inner = binary(0);
      expect(')');
      return inner;
    }
    if (token.v === '[') return { k: 'list', items: list(']', () => binary(0)) };
    if (token.v === '{') {
      return {
        k: 'map',
        entries: list('}', (): [Expr, Expr] => {
          const key = binary(0);
          expect(':');
          return [key, binary(0)];
        }),
      };
    }
    throw new UnsupportedError(`unexpected '${token.v}' in expression ${source}`);
  };

  const expr = binary(0);
  if (pos !== tokens.length) throw new UnsupportedError(`unexpected '${tokens[pos]!.v}' in expression ${source}`);
  return expr;
}

/** `${…}` must be the whole string; partial interpolation is outside the subset. */
export function expressionSource(value: string): string | undefined {
  const trimmed = value.trim();
  if (trimmed.startsWith('${') && trimmed.endsWith('}')) return trimmed.slice(2, -1);
  if (value.includes('${'))
    throw new UnsupportedError(`partial interpolation in "${value}" (a string may only be one whole \${…})`);
  return undefined;
}

/** Every function name an expression calls, for the static check. */
export function calledFunctions(expr: Expr, into: Set<string> = new Set()): Set<string> {
  switch (expr.k) {
    case 'call':
      into.add(expr.fn);
      expr.args.forEach((arg) => calledFunctions(arg, into));
      break;
    case 'member':
      calledFunctions(expr.obj, into);
      break;
    case 'index':
      calledFunctions(expr.obj, into);
      calledFunctions(expr.index, into);
      break;
    case 'unary':
      calledFunctions(expr.arg, into);
      break;
    case 'binary':
      calledFunctions(expr.left, into);
      calledFunctions(expr.right, into);
      break;
    case 'list':
      expr.items.forEach((item) => calledFunctions(item, into));
      break;
    case 'map':
      expr.entries.forEach(([key, value]) => {
        calledFunctions(key, into);
        calledFunctions(value, into);
      });
      break;
  }
  return into;
}
