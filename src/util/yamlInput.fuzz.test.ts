/**
 * Property-based tests of the one parser of outside YAML: any text is parsed or
 * refused with a YamlInputError (line 1 or later), never another error, and
 * every plain value written by the yaml library reads back equal.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { acceptsOrRefuses, fuzzParameters, mappingKey, yamlLikeText } from '../../test/support/fuzz.js';
import { parseYamlInput, readYamlValue, YamlInputError } from './yamlInput.js';

const refusal = (error: unknown) => error instanceof YamlInputError && Number.isInteger(error.line) && error.line >= 1;

/** Plain values as configuration files hold them: strings, numbers, booleans, null, lists and mappings. */
const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.string(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Object.is(n, -0)),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(mappingKey, tie('value'), { maxKeys: 4, noNullPrototype: true }),
  ),
}));

describe('YAML from outside (property-based)', () => {
  it('parses any text or refuses it with a YamlInputError naming a line', () => {
    fc.assert(
      fc.property(yamlLikeText(), fc.constantFrom('core' as const, 'failsafe' as const), (text, schema) => {
        acceptsOrRefuses(() => parseYamlInput(text, { schema }), refusal);
        acceptsOrRefuses(() => readYamlValue(text), refusal);
      }),
      fuzzParameters,
    );
  });

  it('reads back every plain value the yaml library writes', () => {
    fc.assert(
      fc.property(value, (written) => {
        assert.deepEqual(readYamlValue(stringify(written)), written);
      }),
      fuzzParameters,
    );
  });
});
