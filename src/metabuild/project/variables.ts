/**
 * `%{name}` variable expansion, BuildStream 1.x semantics.
 *
 * A reference is `%{` + a name made of a letter followed by letters, digits,
 * `_` or `-`, then `}`; anything else (including `%{` followed by something
 * that is not such a name) is literal text. BuildStream 1.x has no escape
 * syntax, so neither does this: `%%{x}` is a literal `%` followed by a
 * reference. Values are trimmed of surrounding whitespace before expansion
 * (BuildStream strips every string it reads from YAML), so block scalars like
 * `|` lose their trailing newline. Every variable of a set is resolved up
 * front, so an undefined reference or a cycle anywhere is reported even if
 * nothing uses the variable, naming the file and line of the definition.
 */
import { formatLoc, type Loc, ProjectError } from './errors.js';
import type { YMap } from './yamlTree.js';
import { describeNode } from './yamlTree.js';

const REFERENCE = /%\{([a-zA-Z][a-zA-Z0-9_-]*)\}/g;

/** Literal text at even indices, variable names at odd indices. */
type Expression = readonly string[];

function parseExpression(text: string): Expression {
  return text.split(REFERENCE);
}

interface Definition {
  readonly expression: Expression;
  readonly loc: Loc;
  value?: string;
}

/** The variables of one element, resolved. */
export class Variables {
  private readonly definitions = new Map<string, Definition>();

  /**
   * `node` maps names to scalar values; every value is trimmed, then all
   * references are resolved, unless `lazy` (project-level variables, which
   * BuildStream 2 resolves only where they are used).
   */
  constructor(node: YMap, lazy = false) {
    for (const [name, entry] of node.entries) {
      const value = entry.value;
      if (value.type !== 'scalar') {
        throw new ProjectError(entry.keyLoc, `variable '${name}' must be a string, found ${describeNode(value)}`);
      }
      this.definitions.set(name, { expression: parseExpression((value.value ?? '').trim()), loc: entry.keyLoc });
    }
    if (!lazy) for (const name of this.definitions.keys()) this.resolve(name, []);
  }

  has(name: string): boolean {
    return this.definitions.has(name);
  }

  /** The resolved value of a variable, or undefined when it is not defined. */
  get(name: string): string | undefined {
    return this.definitions.has(name) ? this.resolve(name, []) : undefined;
  }

  /** All variables with their resolved values, in definition order. */
  toRecord(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of this.definitions.keys()) out[name] = this.resolve(name, []);
    return out;
  }

  /** Expands references in `text` (which is trimmed first); `loc` is where `text` was written. */
  subst(text: string, loc: Loc): string {
    return this.expand(parseExpression(text.trim()), loc, []);
  }

  private resolve(name: string, chain: string[]): string {
    const definition = this.definitions.get(name)!;
    if (definition.value !== undefined) return definition.value;
    const start = chain.indexOf(name);
    if (start >= 0) {
      const cycle = [...chain.slice(start), name];
      const steps = cycle.map((step) => `'${step}' (${formatLoc(this.definitions.get(step)!.loc)})`);
      throw new ProjectError(
        this.definitions.get(cycle[0]!)!.loc,
        `circular variable reference: ${steps.join(' -> ')}`,
      );
    }
    chain.push(name);
    definition.value = this.expand(definition.expression, definition.loc, chain);
    chain.pop();
    return definition.value;
  }

  private expand(expression: Expression, loc: Loc, chain: string[]): string {
    if (expression.length === 1) return expression[0]!;
    let out = '';
    for (let index = 0; index < expression.length; index++) {
      const part = expression[index]!;
      if (index % 2 === 0) {
        out += part;
      } else if (this.definitions.has(part)) {
        out += this.resolve(part, chain);
      } else {
        const user = chain.length > 0 ? ` (in the value of variable '${chain[chain.length - 1]}')` : '';
        throw new ProjectError(loc, `reference to undefined variable '${part}'${user}`);
      }
    }
    return out;
  }
}
