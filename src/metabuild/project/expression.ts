/**
 * The condition language of BuildStream 2's `(?)` conditionals.
 *
 * BuildStream evaluates each condition as a Jinja2 `if` expression over the
 * project's option values. Projects use a small part of that language:
 * option names, string, number and boolean literals, list literals,
 * comparisons (`==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in`), `not`,
 * `and`, `or` and parentheses. This module implements exactly that part with
 * Jinja's semantics (Python truthiness, `and`/`or` returning an operand, an
 * undefined name being an error), and reports anything else as a syntax
 * error rather than guessing.
 */

/** A value an expression can produce: option values are booleans, strings or lists of strings. */
export type ExpressionValue = boolean | string | number | null | readonly ExpressionValue[];

/** A problem with a condition; the caller adds the file and line. */
export class ExpressionError extends Error {
  override name = 'ExpressionError';
}

type Token =
  | { kind: 'name'; text: string }
  | { kind: 'string'; text: string }
  | { kind: 'number'; value: number }
  | { kind: 'op'; text: string };

const OPERATORS = ['==', '!=', '<=', '>=', '<', '>', '(', ')', '[', ']', ','];

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let index = 0;
  while (index < source.length) {
    const char = source[index] as string;
    if (/\s/.test(char)) {
      index++;
      continue;
    }
    if (char === '"' || char === "'") {
      let text = '';
      index++;
      while (index < source.length && source[index] !== char) {
        if (source[index] === '\\' && index + 1 < source.length) {
          const escaped = source[index + 1] as string;
          text += escaped === 'n' ? '\n' : escaped === 't' ? '\t' : escaped;
          index += 2;
        } else text += source[index++];
      }
      if (index >= source.length) throw new ExpressionError(`unterminated string in '${source}'`);
      index++;
      tokens.push({ kind: 'string', text });
      continue;
    }
    const number = /^\d+(\.\d+)?/.exec(source.slice(index));
    if (number) {
      tokens.push({ kind: 'number', value: Number(number[0]) });
      index += number[0].length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(index));
    if (name) {
      tokens.push({ kind: 'name', text: name[0] });
      index += name[0].length;
      continue;
    }
    const operator = OPERATORS.find((op) => source.startsWith(op, index));
    if (!operator) throw new ExpressionError(`unexpected character '${char}' in '${source}'`);
    tokens.push({ kind: 'op', text: operator });
    index += operator.length;
  }
  return tokens;
}

/** Python truthiness, which Jinja's `if` uses. */
export function truthy(value: ExpressionValue): boolean {
  if (Array.isArray(value)) return value.length > 0;
  return value !== null && value !== false && value !== '' && value !== 0;
}

function equal(a: ExpressionValue, b: ExpressionValue): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => equal(item, b[i]!));
  // Python: True == 1 and False == 0.
  const number = (v: ExpressionValue) => (typeof v === 'boolean' ? Number(v) : v);
  return number(a) === number(b);
}

function contains(container: ExpressionValue, item: ExpressionValue): boolean {
  if (Array.isArray(container)) return container.some((element) => equal(element, item));
  if (typeof container === 'string') {
    if (typeof item !== 'string') throw new ExpressionError("'in <string>' requires a string on the left");
    return container.includes(item);
  }
  throw new ExpressionError(`cannot test membership in ${describe(container)}`);
}

function order(a: ExpressionValue, b: ExpressionValue, op: string): boolean {
  const comparable = (v: ExpressionValue) => typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean';
  if (!comparable(a) || !comparable(b) || (typeof a === 'string') !== (typeof b === 'string')) {
    throw new ExpressionError(`cannot compare ${describe(a)} and ${describe(b)} with '${op}'`);
  }
  const x = a as number | string;
  const y = b as number | string;
  return op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y;
}

function describe(value: ExpressionValue): string {
  if (Array.isArray(value)) return 'a list';
  return value === null ? 'none' : `a ${typeof value}`;
}

class Parser {
  private position = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly source: string,
    private readonly names: (name: string) => ExpressionValue,
  ) {}

  parse(): ExpressionValue {
    if (this.tokens.length === 0) throw new ExpressionError('empty condition');
    const value = this.or();
    if (this.position < this.tokens.length) throw this.unexpected();
    return value;
  }

  private peek(): Token | undefined {
    return this.tokens[this.position];
  }

  private isWord(text: string, offset = 0): boolean {
    const token = this.tokens[this.position + offset];
    return token?.kind === 'name' && token.text === text;
  }

  private isOp(text: string): boolean {
    const token = this.peek();
    return token?.kind === 'op' && token.text === text;
  }

  private unexpected(): ExpressionError {
    const token = this.peek();
    const what = !token
      ? 'the end'
      : token.kind === 'number'
        ? String(token.value)
        : token.kind === 'string'
          ? `'${token.text}'`
          : `'${token.text}'`;
    return new ExpressionError(`unexpected ${what} in '${this.source}'`);
  }

  private or(): ExpressionValue {
    let left = this.and();
    while (this.isWord('or')) {
      this.position++;
      const right = this.and();
      left = truthy(left) ? left : right;
    }
    return left;
  }

  private and(): ExpressionValue {
    let left = this.not();
    while (this.isWord('and')) {
      this.position++;
      const right = this.not();
      left = truthy(left) ? right : left;
    }
    return left;
  }

  private not(): ExpressionValue {
    if (this.isWord('not')) {
      this.position++;
      return !truthy(this.not());
    }
    return this.comparison();
  }

  private comparison(): ExpressionValue {
    let left = this.primary();
    let result: ExpressionValue | undefined;
    for (;;) {
      const token = this.peek();
      let op: string | undefined;
      if (token?.kind === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(token.text)) op = token.text;
      else if (this.isWord('in')) op = 'in';
      else if (this.isWord('not') && this.isWord('in', 1)) op = 'not in';
      if (!op) break;
      this.position += op === 'not in' ? 2 : 1;
      const right = this.primary();
      let holds: boolean;
      if (op === '==') holds = equal(left, right);
      else if (op === '!=') holds = !equal(left, right);
      else if (op === 'in') holds = contains(right, left);
      else if (op === 'not in') holds = !contains(right, left);
      else holds = order(left, right, op);
      // Chained comparisons hold only if every link holds, as in Python.
      result = (result === undefined || result === true) && holds;
      left = right;
    }
    return result === undefined ? left : result;
  }

  private primary(): ExpressionValue {
    const token = this.peek();
    if (!token) throw this.unexpected();
    if (token.kind === 'string') {
      this.position++;
      return token.text;
    }
    if (token.kind === 'number') {
      this.position++;
      return token.value;
    }
    if (token.kind === 'op' && token.text === '(') {
      this.position++;
      const value = this.or();
      if (this.isOp(',')) return this.listRest(value, ')');
      if (!this.isOp(')')) throw this.unexpected();
      this.position++;
      return value;
    }
    if (token.kind === 'op' && token.text === '[') {
      this.position++;
      if (this.isOp(']')) {
        this.position++;
        return [];
      }
      return this.listRest(this.or(), ']');
    }
    if (token.kind === 'name') {
      this.position++;
      switch (token.text) {
        case 'true':
        case 'True':
          return true;
        case 'false':
        case 'False':
          return false;
        case 'none':
        case 'None':
          return null;
        case 'and':
        case 'or':
        case 'not':
        case 'in':
        case 'is':
        case 'if':
          this.position--;
          throw this.unexpected();
        default:
          return this.names(token.text);
      }
    }
    throw this.unexpected();
  }

  /** The rest of a list or tuple literal after its first item. */
  private listRest(first: ExpressionValue, close: string): ExpressionValue[] {
    const items = [first];
    while (this.isOp(',')) {
      this.position++;
      if (this.isOp(close)) break;
      items.push(this.or());
    }
    if (!this.isOp(close)) throw this.unexpected();
    this.position++;
    return items;
  }
}

/**
 * Evaluates a condition over `values` (option name to value) and returns
 * whether it holds. Unknown names and unsupported syntax are errors.
 */
export function evaluateCondition(source: string, values: ReadonlyMap<string, ExpressionValue>): boolean {
  const lookup = (name: string): ExpressionValue => {
    const value = values.get(name);
    if (value === undefined) throw new ExpressionError(`'${name}' is undefined (not a project option)`);
    return value;
  };
  return truthy(new Parser(tokenize(source), source, lookup).parse());
}
