/**
 * Shared pieces of the property-based (fast-check) tests of the parsers of
 * outside input: how many runs a property gets, and the check that a parser
 * refuses bad input only with the error it documents.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type Code, StatusError } from '../../src/util/status.js';

/** Runs per property: enough to find the usual edge cases, few enough to keep the suite fast. */
export const FUZZ_RUNS = 300;

/** Parameters for fc.assert: FUZZ_RUNS runs, the seed printed on failure by fast-check. */
export const fuzzParameters = { numRuns: FUZZ_RUNS } as const;

/**
 * Runs a parser on outside input: its result when it accepts, undefined when it
 * refuses with an error `isDocumented` recognises; any other error fails the test.
 */
export function acceptsOrRefuses<T>(run: () => T, isDocumented: (error: unknown) => boolean): T | undefined {
  try {
    return run();
  } catch (error) {
    if (!isDocumented(error)) assert.fail(`unexpected error: ${(error as Error)?.stack ?? String(error)}`);
    return undefined;
  }
}

/** The same for a parser that returns a promise. */
export async function acceptsOrRefusesAsync<T>(
  run: () => Promise<T>,
  isDocumented: (error: unknown) => boolean,
): Promise<T | undefined> {
  try {
    return await run();
  } catch (error) {
    if (!isDocumented(error)) assert.fail(`unexpected error: ${(error as Error)?.stack ?? String(error)}`);
    return undefined;
  }
}

/** Recognises a StatusError of one code. */
export function isStatus(code: Code): (error: unknown) => boolean {
  return (error) => error instanceof StatusError && error.code === code;
}

/** Lowercase hex strings of exactly `length` digits. */
export function hexString(length: number): fc.Arbitrary<string> {
  return fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length });
}

/** Strings made mostly of the characters that matter to path-like parsers, plus any other. */
export function pathLikeString(specials: readonly string[], maxLength = 40): fc.Arbitrary<string> {
  const unit = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...specials) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
  );
  return fc.array(unit, { maxLength }).map((parts) => parts.join(''));
}

/**
 * Text made of YAML's significant pieces (indentation, block and flow
 * collections, anchors, aliases, tags, quotes, block scalars, directives,
 * document markers), with `words` mixed in (the keys and values of a format).
 */
export function yamlLikeText(words: readonly string[] = []): fc.Arbitrary<string> {
  return pathLikeString(
    [
      '\n',
      '\n',
      '  ',
      '- ',
      ': ',
      'key',
      'value',
      '[',
      ']',
      '{',
      '}',
      ', ',
      '&a ',
      '*a',
      '<<: *a',
      '!!str ',
      '!!map ',
      '!tag ',
      '? ',
      '"',
      "'",
      '\\',
      '| ',
      '> ',
      '# ',
      '~',
      'null',
      '---\n',
      '...\n',
      '%YAML 1.2\n',
      '\t',
      '0x1F',
      '1e400',
      ...words,
    ],
    60,
  );
}

/** Keys of outside mappings, the ones that mean something to JavaScript objects included. */
export const mappingKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty') },
);
