/**
 * Property-based tests of the readers of a project's files: any text given as
 * an element file or as project.conf is read or refused with a ProjectError
 * (never another error), and any tree of strings, lists and mappings written as
 * YAML reads back as the same plain data (BuildStream reads every scalar as a
 * string).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { acceptsOrRefuses, fuzzParameters, mappingKey, yamlLikeText } from '../../../test/support/fuzz.js';
import { parseElement } from './elementFile.js';
import { ProjectError } from './errors.js';
import { parseProjectConf } from './projectConf.js';
import { type Plain, parseYaml, toPlain } from './yamlTree.js';

const refusal = (error: unknown) => error instanceof ProjectError;

const ELEMENT_WORDS = [
  'kind: ',
  'manual',
  'import',
  'stack',
  'autotools',
  'depends:',
  'build-depends:',
  'runtime-depends:',
  'sources:',
  'variables:',
  'environment:',
  'config:',
  'public:',
  'sandbox:',
  'filename: ',
  'type: build',
  'junction: ',
  'url: ',
  'ref: ',
  'path: ',
  'install-commands:',
  '%{prefix}',
  '%{',
  '(@): ',
  '(?):',
  '(>): ',
  'elements/a.bst',
];
const PROJECT_WORDS = [
  'name: ',
  'format-version: ',
  'element-path: ',
  'aliases:',
  'options:',
  'variables:',
  'environment:',
  'split-rules:',
  'elements:',
  'sources:',
  'plugins:',
  'mirrors:',
  'min-version: 2.0',
  '18',
  '-1',
  'project',
];

/** What YAML with the failsafe schema reads: strings, lists and mappings with string keys. */
const { plain } = fc.letrec<{ plain: Plain }>((tie) => ({
  plain: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.string(),
    fc.array(tie('plain'), { maxLength: 4 }),
    fc.dictionary(mappingKey, tie('plain'), { maxKeys: 4, noNullPrototype: true }),
  ),
}));

describe('project files (property-based)', () => {
  it('reads any text as an element or refuses it with a ProjectError', () => {
    fc.assert(
      fc.property(yamlLikeText(ELEMENT_WORDS), (text) => {
        acceptsOrRefuses(() => parseElement(text, 'a.bst', 'elements/a.bst'), refusal);
      }),
      fuzzParameters,
    );
  });

  it('reads any text as project.conf or refuses it with a ProjectError', () => {
    fc.assert(
      fc.property(yamlLikeText(PROJECT_WORDS), (text) => {
        acceptsOrRefuses(() => parseProjectConf(parseYaml(text, 'project.conf'), '/nonexistent/project'), refusal);
      }),
      fuzzParameters,
    );
  });

  it('reads back any mapping of strings, lists and mappings written as YAML', () => {
    fc.assert(
      fc.property(fc.dictionary(mappingKey, plain, { maxKeys: 5, noNullPrototype: true }), (written) => {
        assert.deepEqual(toPlain(parseYaml(stringify(written), 'data.yml')), written);
      }),
      fuzzParameters,
    );
  });
});
