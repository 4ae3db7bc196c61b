import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { rejectsAt, removeProjects, throwsAt, writeProject } from '../../../test/support/project.js';
import { loadProjectConf, parseProjectConf, translateAlias } from './projectConf.js';
import { parseYaml, toPlain } from './yamlTree.js';

after(removeProjects);

const parse = (text: string) => parseProjectConf(parseYaml(text, 'project.conf'), '/p');

describe('project.conf', () => {
  it('applies defaults', () => {
    const config = parse('name: demo\n');
    assert.equal(config.name, 'demo');
    assert.equal(config.elementPath, '.');
    assert.equal(config.formatVersion, 0);
    assert.equal(config.refStorage, 'inline');
    assert.deepEqual(config.aliases, {});
    const variables = toPlain(config.layers.variables) as Record<string, string>;
    assert.equal(variables.prefix, '/usr');
    assert.equal(variables['build-root'], '/buildstream/%{project-name}/%{element-name}');
    assert.equal((toPlain(config.layers.environment) as Record<string, string>).SOURCE_DATE_EPOCH, '1320937200');
    assert.deepEqual(Object.keys(toPlain(config.layers.splitRules) as object), [
      'runtime',
      'devel',
      'debug',
      'doc',
      'locale',
    ]);
  });

  it('lays project settings over the defaults', () => {
    const config = parse(
      [
        'name: demo',
        'format-version: 12',
        'element-path: elements/',
        'ref-storage: inline',
        'aliases:',
        '  gnu: https://ftp.gnu.org/gnu/',
        'variables:',
        '  prefix: /opt',
        'environment:',
        '  LANG: C.UTF-8',
        'environment-nocache: [LANG]',
        'split-rules:',
        '  devel:',
        '    (>): ["%{prefix}/dev/**"]',
        '  extra: [/extra]',
        'sandbox:',
        '  build-uid: 1000',
        'elements:',
        '  autotools:',
        '    variables:',
        '      conf-global: --disable-static',
        '',
      ].join('\n'),
    );
    assert.equal(config.formatVersion, 12);
    assert.equal(config.elementPath, 'elements');
    assert.deepEqual(config.aliases, { gnu: 'https://ftp.gnu.org/gnu/' });
    assert.equal((toPlain(config.layers.variables) as Record<string, string>).prefix, '/opt');
    assert.equal((toPlain(config.layers.environment) as Record<string, string>).LANG, 'C.UTF-8');
    assert.equal((toPlain(config.layers.environment) as Record<string, string>).PATH, '/usr/bin:/bin:/usr/sbin:/sbin');
    assert.deepEqual(config.layers.environmentNocache, ['LANG']);
    const splits = toPlain(config.layers.splitRules) as Record<string, string[]>;
    assert.equal(splits.devel!.at(-1), '%{prefix}/dev/**');
    assert.deepEqual(splits.extra, ['/extra']);
    assert.deepEqual(toPlain(config.layers.sandbox), { 'build-uid': '1000', 'build-gid': '0' });
    assert.deepEqual([...config.layers.elementOverrides.keys()], ['autotools']);
  });

  it('translates aliased URLs', () => {
    const aliases = { gnu: 'https://ftp.gnu.org/gnu/' };
    assert.equal(translateAlias(aliases, 'gnu:make/make-4.4.tar.gz'), 'https://ftp.gnu.org/gnu/make/make-4.4.tar.gz');
    assert.equal(translateAlias(aliases, 'https://example.com/x'), 'https://example.com/x');
    assert.equal(translateAlias(aliases, 'plain'), 'plain');
  });

  it('requires a valid name', () => {
    throwsAt(() => parse('element-path: .\n'), 'project.conf', 1, /must set 'name'/);
    throwsAt(() => parse('\nname: 9lives\n'), 'project.conf', 2, /invalid project name '9lives'/);
  });

  it('rejects options and plugins clearly', () => {
    throwsAt(
      () => parse('name: x\noptions:\n  arch: {}\n'),
      'project.conf',
      2,
      /'options': project options are not supported/,
    );
    throwsAt(
      () => parse('name: x\n\nplugins:\n- origin: local\n'),
      'project.conf',
      3,
      /'plugins': plugins are not supported/,
    );
    throwsAt(() => parse('name: x\nartifacts:\n  url: x\n'), 'project.conf', 2, /artifact servers are not supported/);
  });

  it('rejects unknown keys', () => {
    throwsAt(() => parse('name: x\nvariabels: {}\n'), 'project.conf', 2, /unknown key 'variabels'/);
  });

  it('accepts only inline ref storage', () => {
    throwsAt(
      () => parse('name: x\nref-storage: project.refs\n'),
      'project.conf',
      2,
      /'ref-storage: project.refs' is not supported/,
    );
  });

  it('accepts format versions up to BuildStream 1.6', () => {
    assert.equal(parse('name: x\nformat-version: 18\n').formatVersion, 18);
    throwsAt(() => parse('name: x\nformat-version: 19\n'), 'project.conf', 2, /format version 19/);
    throwsAt(() => parse('name: x\nformat-version: one\n'), 'project.conf', 2, /must be an integer/);
  });

  it('refuses to redefine automatic variables', () => {
    throwsAt(() => parse('name: x\nvariables:\n  max-jobs: 4\n'), 'project.conf', 3, /'max-jobs' is set automatically/);
    throwsAt(
      () => parse('name: x\nelements:\n  make:\n    variables:\n      project-name: y\n'),
      'project.conf',
      5,
      /'project-name' is set automatically/,
    );
  });

  it('checks element overrides', () => {
    throwsAt(() => parse('name: x\nelements:\n  meson: {}\n'), 'project.conf', 3, /unsupported element kind 'meson'/);
    throwsAt(
      () => parse('name: x\nelements:\n  make:\n    kind: x\n'),
      'project.conf',
      4,
      /unknown key 'kind' in 'elements.make'/,
    );
  });

  it('checks split rules and sandbox settings', () => {
    throwsAt(
      () => parse('name: x\nsplit-rules:\n  foo: bar\n'),
      'project.conf',
      3,
      /split-rules domain 'foo' must be a list/,
    );
    throwsAt(
      () => parse('name: x\nsplit-rules:\n  new:\n    (>): [a]\n'),
      'project.conf',
      4,
      /no list 'split-rules.new' exists/,
    );
    throwsAt(
      () => parse('name: x\nsandbox:\n  build-user: me\n'),
      'project.conf',
      3,
      /unknown sandbox setting 'build-user'/,
    );
  });

  it('keeps element-path inside the project', () => {
    throwsAt(
      () => parse('name: x\nelement-path: ../elsewhere\n'),
      'project.conf',
      2,
      /must be a directory inside the project/,
    );
    throwsAt(() => parse('name: x\nelement-path: /abs\n'), 'project.conf', 2, /must be a directory inside the project/);
  });

  it('requires element-path to exist when loading from disk', async () => {
    const dir = await writeProject({ 'project.conf': 'name: x\nelement-path: elements\n' });
    await rejectsAt(loadProjectConf(dir), 'project.conf', 2, /element-path 'elements' is not a directory/);
    await assert.rejects(loadProjectConf(`${dir}/missing`), /has no project.conf/);
  });
});
