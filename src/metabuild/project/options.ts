/**
 * Project options of BuildStream 2 projects and the conditionals that use them.
 *
 * A project declares options in project.conf (`options:`), each with a type
 * (bool, enum, flags, element-mask, arch, os), a description and a default;
 * a junction or the command line may set their values. Files then carry
 * `(?)` lists of `CONDITION: FRAGMENT` entries: the fragment is laid over the
 * mapping holding the list when the condition holds, and `(!)` makes loading
 * fail with its message. An option with `variable:` also defines that
 * variable for every element. The rules (value syntax, sorting of flags, the
 * default of arch and os options) follow BuildStream 2.8's option types.
 */
import { arch, platform } from 'node:os';
import { composite } from './composite.js';
import { type Loc, ProjectError } from './errors.js';
import { ExpressionError, type ExpressionValue, evaluateCondition } from './expression.js';
import {
  checkKeys,
  describeNode,
  expectSeq,
  expectString,
  expectStringList,
  optional,
  type YMap,
  type YNode,
} from './yamlTree.js';

export type OptionType = 'bool' | 'enum' | 'flags' | 'element-mask' | 'arch' | 'os';
const OPTION_TYPES: readonly OptionType[] = ['bool', 'enum', 'flags', 'element-mask', 'arch', 'os'];

interface OptionDefinition {
  readonly name: string;
  readonly type: OptionType;
  /** The variable the option's value is exported to, if any. */
  readonly variable: string | undefined;
  /** Allowed values (enum, flags, arch, os; element names for element-mask). */
  readonly values: readonly string[];
  value: boolean | string | string[];
  readonly loc: Loc;
}

/** BuildStream 2 booleans: True, true, 1, False, false, 0. */
export function parseBool2(text: string): boolean | undefined {
  if (text === 'True' || text === 'true' || text === '1') return true;
  if (text === 'False' || text === 'false' || text === '0') return false;
  return undefined;
}

const ARCH_ALIASES: Record<string, string> = {
  aarch32: 'aarch32',
  aarch64: 'aarch64',
  'aarch64-be': 'aarch64-be',
  amd64: 'x86-64',
  arm: 'aarch32',
  armv8l: 'aarch64',
  armv8b: 'aarch64-be',
  i386: 'x86-32',
  i486: 'x86-32',
  i586: 'x86-32',
  i686: 'x86-32',
  la64v100: 'la64v100',
  loong64: 'la64v100',
  loongarch64: 'la64v100',
  'power-isa-be': 'power-isa-be',
  'power-isa-le': 'power-isa-le',
  powerpc: 'power-isa-be',
  powerpc64: 'power-isa-be',
  powerpc64le: 'power-isa-le',
  ppc64: 'power-isa-be',
  ppc64le: 'power-isa-le',
  riscv32: 'rv32g',
  riscv64: 'rv64g',
  rv32g: 'rv32g',
  rv64g: 'rv64g',
  sparc: 'sparc-v9',
  sparc64: 'sparc-v9',
  'sparc-v9': 'sparc-v9',
  sun4v: 'sparc-v9',
  'x86-32': 'x86-32',
  'x86-64': 'x86-64',
};

/** BuildStream's canonical architecture name (x86-64, aarch64, ...), or undefined when unknown. */
export function canonicalArch(name: string): string | undefined {
  return ARCH_ALIASES[name.replaceAll('_', '-').toLowerCase()];
}

/** This host's architecture as BuildStream names it (from Node's name for it). */
export function hostArch(): string {
  const node: Record<string, string> = { x64: 'x86-64', ia32: 'x86-32', arm64: 'aarch64', arm: 'aarch32' };
  return node[arch()] ?? canonicalArch(arch()) ?? arch();
}

/** The system name Python's platform.uname() reports ('Linux'), the default of os options. */
export function hostSystemName(): string {
  const names: Record<string, string> = { linux: 'Linux', darwin: 'Darwin', freebsd: 'FreeBSD', win32: 'Windows' };
  return names[platform()] ?? platform();
}

const SYMBOL = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SYMBOL_WITH_DASHES = /^[A-Za-z_-][A-Za-z0-9_-]*$/;

/** The declared options of one project and their current values. */
export class OptionPool {
  private readonly options = new Map<string, OptionDefinition>();

  /**
   * Reads the `options:` declarations. `elementNames` lists the project's
   * element files, the valid values of element-mask options.
   */
  constructor(node: YMap | undefined, elementNames: () => readonly string[]) {
    if (!node) return;
    for (const [name, entry] of node.entries) {
      if (!SYMBOL.test(name)) {
        throw new ProjectError(
          entry.keyLoc,
          `invalid option name '${name}': use letters, digits and '_', not starting with a digit`,
        );
      }
      if (entry.value.type !== 'map') {
        throw new ProjectError(entry.keyLoc, `option '${name}' must be a mapping, found ${describeNode(entry.value)}`);
      }
      this.options.set(name, defineOption(name, entry.value, elementNames));
    }
  }

  /** Sets values as a junction's `options:` gives them (YAML values, with locations). */
  setFromYaml(node: YMap): void {
    for (const [name, entry] of node.entries) {
      const option = this.options.get(name);
      if (!option) throw new ProjectError(entry.keyLoc, `unknown option '${name}'`);
      option.value = valueFromYaml(option, entry.value);
    }
  }

  /** Sets a value given on the command line (`--option NAME VALUE`). */
  setFromText(name: string, text: string): void {
    const option = this.options.get(name);
    if (!option) throw new ProjectError(undefined, `unknown option '${name}' given on the command line`);
    option.value = valueFromText(option, text, undefined);
  }

  /**
   * Checks the values of arch and os options, whose defaults come from the
   * host and may not be among the declared values; call once every value
   * source (junction, command line) has been applied.
   */
  resolve(): void {
    for (const option of this.options.values()) {
      if ((option.type === 'arch' || option.type === 'os') && !option.values.includes(option.value as string)) {
        throw new ProjectError(
          option.loc,
          `${option.type} option '${option.name}' has the value '${String(option.value)}' of this host, which is not one of its values (${option.values.join(', ')})`,
        );
      }
    }
  }

  /** Option values as conditions see them. */
  values(): Map<string, ExpressionValue> {
    const out = new Map<string, ExpressionValue>();
    for (const [name, option] of this.options) out.set(name, option.value);
    return out;
  }

  /** The variables options export (`variable:`), as BuildStream formats them: '1'/'0', values, comma lists. */
  exportedVariables(): [string, string, Loc][] {
    const out: [string, string, Loc][] = [];
    for (const option of this.options.values()) {
      if (!option.variable) continue;
      const value = option.value;
      const text = typeof value === 'boolean' ? (value ? '1' : '0') : Array.isArray(value) ? value.join(',') : value;
      out.push([option.variable, text, option.loc]);
    }
    return out;
  }

  /**
   * Applies every `(?)` and `(!)` in `node` (recursively) and returns the
   * result. `restricted` keys may not appear in a conditional fragment at the
   * top level (project.conf's name, plugins, ...).
   */
  process(node: YMap, restricted: readonly string[] = []): YMap {
    let current = node;
    for (;;) {
      const assertion = current.entries.get('(!)');
      if (assertion) {
        throw new ProjectError(assertion.keyLoc, expectString(assertion.value, "'(!)'").trim());
      }
      const conditions = current.entries.get('(?)');
      if (!conditions) break;
      const rest = new Map(current.entries);
      rest.delete('(?)');
      current = { ...current, entries: rest };
      for (const condition of expectSeq(conditions.value, "'(?)'").items) {
        current = this.applyCondition(current, condition, restricted);
      }
    }
    let changed = false;
    const entries = new Map(current.entries);
    for (const [key, entry] of current.entries) {
      const value = this.processValue(entry.value);
      if (value !== entry.value) {
        entries.set(key, { ...entry, value });
        changed = true;
      }
    }
    return changed ? { ...current, entries } : current;
  }

  private processValue(value: YNode): YNode {
    if (value.type === 'map') return this.process(value);
    if (value.type === 'seq') {
      const items = value.items.map((item) => this.processValue(item));
      return items.some((item, index) => item !== value.items[index]) ? { ...value, items } : value;
    }
    return value;
  }

  private applyCondition(node: YMap, condition: YNode, restricted: readonly string[]): YMap {
    if (condition.type !== 'map' || condition.entries.size !== 1) {
      throw new ProjectError(condition.loc, 'a conditional must be a mapping with exactly one condition');
    }
    const [[expression, entry]] = [...condition.entries] as [[string, { keyLoc: Loc; value: YNode }]];
    let holds: boolean;
    try {
      holds = evaluateCondition(expression, this.values());
    } catch (error) {
      if (error instanceof ExpressionError) {
        throw new ProjectError(entry.keyLoc, `cannot evaluate condition '${expression}': ${error.message}`);
      }
      throw error;
    }
    if (entry.value.type !== 'map') {
      throw new ProjectError(
        entry.keyLoc,
        `the fragment of condition '${expression}' must be a mapping, found ${describeNode(entry.value)}`,
      );
    }
    for (const key of restricted) {
      const found = entry.value.entries.get(key);
      if (found) throw new ProjectError(found.keyLoc, `'${key}' cannot be set conditionally`);
    }
    return holds ? composite(node, entry.value) : node;
  }
}

function defineOption(name: string, node: YMap, elementNames: () => readonly string[]): OptionDefinition {
  const typeNode = optional(node, 'type');
  if (!typeNode) throw new ProjectError(node.loc, `option '${name}' has no 'type'`);
  const type = expectString(typeNode, `option '${name}' type`).trim() as OptionType;
  if (!OPTION_TYPES.includes(type)) {
    throw new ProjectError(
      typeNode.loc,
      `option '${name}' has unknown type '${type}' (one of ${OPTION_TYPES.join(', ')})`,
    );
  }
  const common = ['type', 'description', 'variable'];
  const allowed: Record<OptionType, string[]> = {
    bool: [...common, 'default'],
    enum: [...common, 'values', 'default'],
    flags: [...common, 'values', 'default'],
    'element-mask': [...common, 'default'],
    arch: [...common, 'values'],
    os: [...common, 'values'],
  };
  checkKeys(node, allowed[type], (key) => `unknown key '${key}' in ${type} option '${name}'`);
  const description = optional(node, 'description');
  if (!description) throw new ProjectError(node.loc, `option '${name}' has no 'description'`);
  expectString(description, `option '${name}' description`);
  const variableNode = optional(node, 'variable');
  const variable = variableNode ? expectString(variableNode, `option '${name}' variable`).trim() : undefined;
  if (variable !== undefined && !SYMBOL_WITH_DASHES.test(variable)) {
    throw new ProjectError(variableNode!.loc, `invalid variable name '${variable}' for option '${name}'`);
  }

  const loc = node.loc;
  const required = (key: string): YNode => {
    const value = optional(node, key);
    if (!value) throw new ProjectError(node.loc, `${type} option '${name}' needs '${key}'`);
    return value;
  };
  const definition = (values: readonly string[], value: OptionDefinition['value']): OptionDefinition => ({
    name,
    type,
    variable,
    values,
    value,
    loc,
  });

  switch (type) {
    case 'bool': {
      const base = definition([], false);
      base.value = valueFromYaml(base, required('default'));
      return base;
    }
    case 'enum': {
      const values = declaredValues(node, name, type);
      const base = definition(values, values[0]!);
      base.value = valueFromText(base, expectString(required('default'), `option '${name}' default`).trim(), node);
      return base;
    }
    case 'flags':
    case 'element-mask': {
      const values = type === 'flags' ? declaredValues(node, name, type) : [...elementNames()];
      if (values.length === 0) throw new ProjectError(loc, `${type} option '${name}' has no values`);
      const base = definition(values, []);
      const defaults = optional(node, 'default');
      // The declared default keeps its order; values set later are sorted.
      base.value = defaults ? checkFlags(base, expectStringList(defaults, `option '${name}' default`), defaults) : [];
      return base;
    }
    case 'arch': {
      const values = declaredValues(node, name, type);
      const list = expectSeq(required('values'), `option '${name}' values`);
      const host = hostArch();
      let chosen: string | undefined;
      values.forEach((value, index) => {
        const canonical = canonicalArch(value);
        if (!canonical) {
          throw new ProjectError(list.items[index]!.loc, `unknown architecture '${value}' in arch option '${name}'`);
        }
        if (chosen === undefined && canonical === host) chosen = value;
      });
      return definition(values, chosen ?? host);
    }
    case 'os': {
      const values = declaredValues(node, name, type);
      return definition(values, hostSystemName());
    }
  }
}

function declaredValues(node: YMap, name: string, type: string): string[] {
  const values = optional(node, 'values');
  if (!values) throw new ProjectError(node.loc, `${type} option '${name}' has no 'values'`);
  const list = expectStringList(values, `option '${name}' values`).map((value) => value.trim());
  if (list.length === 0) throw new ProjectError(values.loc, `${type} option '${name}' has no values`);
  return list;
}

function checkFlags(option: OptionDefinition, flags: string[], at: YNode | undefined): string[] {
  for (const flag of flags) {
    if (!option.values.includes(flag)) {
      throw new ProjectError(
        at?.loc,
        `invalid value '${flag}' for ${option.type} option '${option.name}' (valid: ${option.values.join(', ')})`,
      );
    }
  }
  return flags;
}

function valueFromYaml(option: OptionDefinition, node: YNode): OptionDefinition['value'] {
  if (option.type === 'flags' || option.type === 'element-mask') {
    const flags = expectStringList(node, `option '${option.name}'`).map((flag) => flag.trim());
    return checkFlags(option, flags, node).sort();
  }
  return valueFromText(option, expectString(node, `option '${option.name}'`).trim(), node);
}

function valueFromText(option: OptionDefinition, text: string, at: YNode | undefined): OptionDefinition['value'] {
  switch (option.type) {
    case 'bool': {
      const value = parseBool2(text);
      if (value === undefined) {
        throw new ProjectError(at?.loc, `invalid value '${text}' for boolean option '${option.name}'`);
      }
      return value;
    }
    case 'flags':
    case 'element-mask': {
      const flags = text.replace(/\s+/g, '') === '' ? [] : text.replace(/\s+/g, '').split(',');
      return checkFlags(option, flags, at).sort();
    }
    default:
      if (!option.values.includes(text)) {
        throw new ProjectError(
          at?.loc,
          `invalid value '${text}' for ${option.type} option '${option.name}' (valid: ${option.values.join(', ')})`,
        );
      }
      return text;
  }
}
