import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rejectsAt, removeProjects, writeProject } from '../../../test/support/project.js';
import type { BuildConfig } from './kinds.js';
import { loadProject, type Project, resolveTargets } from './loader.js';

after(removeProjects);

// Values marked "bst 2.8.1" were printed by `bst show --format '%{vars}||%{env}||%{config}'`
// of BuildStream 2.8.1 (Debian sid) on the same files.
const RICH = {
  'project.conf': [
    'name: rich',
    'min-version: 2.2',
    'element-path: elements',
    'plugins:',
    '- origin: pip',
    '  package-name: buildstream-plugins',
    '  elements: [make, autotools, cmake]',
    '  sources: [git, patch]',
    'options:',
    '  debug:',
    '    type: bool',
    '    description: Debug build',
    '    default: False',
    '    variable: debug-flag',
    '  flavour:',
    '    type: enum',
    '    description: Which flavour',
    '    values: [vanilla, chocolate]',
    '    default: chocolate',
    '    variable: flavour',
    '  features:',
    '    type: flags',
    '    description: Features',
    '    values: [x11, wayland, pulse]',
    '    default: [wayland, pulse]',
    '    variable: features',
    '(@): include/common.yml',
    'aliases:',
    '  upstream: https://example.com/%{flavour}/',
    'variables:',
    '  prefix: /opt',
    '  greeting: hello',
    '  (?):',
    '  - debug:',
    '      greeting: debug-hello',
    '  - flavour == "chocolate" and "wayland" in features:',
    '      extra: choc-wayland',
    'environment:',
    '  FOO: "%{prefix}/foo"',
    'environment-nocache: [FOO]',
    'elements:',
    '  autotools:',
    '    variables:',
    '      conf-local: --disable-static',
    '    config:',
    '      install-commands:',
    '        (>):',
    '        - echo installed',
    '  make:',
    '    environment:',
    '      MAKEFLAGS: -j1',
    'sources:',
    '  git:',
    '    config:',
    '      checkout-submodules: False',
    '',
  ].join('\n'),
  'include/common.yml':
    'variables:\n  from-include: yes\n  greeting: included-greeting\nenvironment:\n  INCLUDED: "1"\n',
  'files/hi': 'hi\n',
  'elements/base.bst': 'kind: import\nsources:\n- kind: local\n  path: files\n',
  'elements/auto.bst': [
    'kind: autotools',
    '(@): include/common.yml',
    'build-depends:',
    '- base.bst',
    '- filename: [sub/lib.bst]',
    '  strict: true',
    'runtime-depends:',
    '- sub.bst:thing.bst',
    'variables:',
    '  conf-global: --with-%{flavour}',
    '  (?):',
    '  - not debug:',
    '      release: "yes"',
    'config:',
    '  configure-commands:',
    '    (<):',
    '    - echo first',
    'public:',
    '  other:',
    '    value: "%{prefix}/x"',
    'sources:',
    '- kind: git',
    '  url: upstream:repo.git',
    '  ref: 0123456789012345678901234567890123456789',
    '',
  ].join('\n'),
  'elements/sub/lib.bst': 'kind: make\ndepends:\n- base.bst\n- filename: base.bst\n  type: build\n',
  'elements/sub.bst':
    'kind: junction\nsources:\n- kind: local\n  path: subproject\nconfig:\n  options:\n    shade: dark\n',
  'elements/thinglink.bst': 'kind: link\nconfig:\n  target: sub.bst:thing.bst\n',
  'elements/cm.bst':
    'kind: cmake\nbuild-depends:\n- thinglink.bst\nvariables:\n  notparallel: true\nsandbox:\n  build-uid: 1000\n',
  'elements/broken.bst': 'kind: flatpak_image\nthis is: not loaded\n',
  'subproject/project.conf': [
    'name: subby',
    'min-version: 2.0',
    'element-path: elements',
    'options:',
    '  shade:',
    '    type: enum',
    '    description: shade',
    '    values: [light, dark]',
    '    default: light',
    '    variable: shade',
    '',
  ].join('\n'),
  'subproject/elements/thing.bst':
    'kind: manual\nvariables:\n  where: "%{shade}-%{project-name}"\nconfig:\n  install-commands:\n  - echo %{where} %{build-root}\n',
};

let rich: Project;
before(async () => {
  rich = await loadProject(await writeProject(RICH), { maxJobs: 2, targets: ['auto.bst', 'cm.bst'] });
});

const element = (name: string) => {
  const found = rich.elements.get(name);
  assert.ok(found, `element ${name}`);
  return found;
};

describe('loadProject of a BuildStream 2 project', () => {
  it('detects the format from min-version and loads only what the targets need', () => {
    assert.equal(rich.config.format, 2);
    assert.equal(rich.config.name, 'rich');
    assert.deepEqual(
      [...rich.elements.keys()].sort(),
      ['auto.bst', 'base.bst', 'cm.bst', 'sub.bst:thing.bst', 'sub/lib.bst'],
      'broken.bst, which no target needs, is never read',
    );
    assert.deepEqual(
      resolveTargets(rich, ['auto.bst']).map((e) => e.name),
      ['base.bst', 'sub/lib.bst', 'sub.bst:thing.bst', 'auto.bst'],
    );
  });

  it('applies options, conditionals and includes as BuildStream 2.8.1 does', () => {
    const base = element('base.bst').variables;
    // bst 2.8.1: project.conf wins over what it includes; conditionals follow option values.
    assert.equal(base.greeting, 'hello');
    assert.equal(base['from-include'], 'yes');
    assert.equal(base.extra, 'choc-wayland');
    assert.equal(base['debug-flag'], '0');
    assert.equal(base.flavour, 'chocolate');
    assert.equal(base.features, 'wayland,pulse');
    assert.equal(base['build-root'], '/buildstream/rich/base.bst');
    assert.equal(base['strip-binaries'], '');
    assert.deepEqual(element('base.bst').environment, {
      PATH: '/usr/bin:/bin:/usr/sbin:/sbin',
      SHELL: '/bin/sh',
      TERM: 'dumb',
      USER: 'tomjon',
      USERNAME: 'tomjon',
      LOGNAME: 'tomjon',
      LC_ALL: 'C',
      HOME: '/tmp',
      TZ: 'UTC',
      SOURCE_DATE_EPOCH: '1321009871',
      INCLUDED: '1',
      FOO: '/opt/foo',
    });
    // An element's own include wins over project.conf.
    assert.equal(element('auto.bst').variables.greeting, 'included-greeting');
    assert.equal(element('auto.bst').variables.release, 'yes');
  });

  it('expands the buildstream-plugins defaults with per-kind overrides', () => {
    const auto = element('auto.bst');
    const config = auto.config as BuildConfig;
    // bst 2.8.1
    assert.equal(
      config.configureCommands[2],
      './configure --prefix=/opt \\\n--exec-prefix=/opt \\\n--bindir=/opt/bin \\\n--sbindir=/opt/sbin \\\n' +
        '--sysconfdir=/etc \\\n--datadir=/opt/share \\\n--includedir=/opt/include \\\n--libdir=/opt/lib \\\n' +
        '--libexecdir=/opt/libexec \\\n--localstatedir=/var \\\n--sharedstatedir=/opt/com \\\n' +
        '--mandir=/opt/share/man \\\n--infodir=/opt/share/info --with-chocolate --disable-static',
    );
    assert.equal(config.configureCommands[0], 'echo first');
    assert.equal(config.buildCommands[0], 'make ');
    assert.equal(config.installCommands[0], 'make -j1  DESTDIR="/buildstream-install" install');
    assert.equal(config.installCommands.at(-1), 'echo installed');
    assert.deepEqual(config.stripCommands, ['']);
    assert.equal(auto.environment.MAKEFLAGS, '-j2');
    assert.deepEqual([...auto.environmentNocache].sort(), ['FOO', 'MAKEFLAGS', 'V']);
    assert.equal(element('sub/lib.bst').environment.MAKEFLAGS, '-j1');
    const cmake = element('cm.bst');
    assert.equal(cmake.environment.JOBS, '-j1', 'notparallel sets max-jobs to 1');
    assert.equal(
      (cmake.config as BuildConfig).configureCommands[0],
      'cmake -B_builddir -H"." -G"Ninja" -DCMAKE_VERBOSE_MAKEFILE=ON \\\n-DCMAKE_INSTALL_PREFIX:PATH="/opt" \\\n' +
        '-DCMAKE_INSTALL_LIBDIR:PATH="lib"  ',
    );
    assert.deepEqual(cmake.sandbox, { buildUid: 1000, buildGid: undefined, buildOs: undefined, buildArch: undefined });
  });

  it('expands public data and source configurations, under the project-wide source config', () => {
    const auto = element('auto.bst');
    assert.deepEqual(auto.public.other, { value: '/opt/x' });
    assert.deepEqual(auto.sources[0]!.config, {
      'checkout-submodules': 'False',
      url: 'upstream:repo.git',
      ref: '0123456789012345678901234567890123456789',
    });
    assert.deepEqual(rich.config.aliases, { upstream: 'https://example.com/chocolate/' });
  });

  it('resolves dependency forms, junctions and links to qualified names', () => {
    assert.deepEqual(
      element('auto.bst').dependencies.map(({ name, type, strict }) => ({ name, type, strict })),
      [
        { name: 'base.bst', type: 'build', strict: false },
        { name: 'sub/lib.bst', type: 'build', strict: true },
        { name: 'sub.bst:thing.bst', type: 'runtime', strict: false },
      ],
    );
    assert.deepEqual(
      element('sub/lib.bst').dependencies.map(({ name, type }) => ({ name, type })),
      [{ name: 'base.bst', type: 'all' }],
      'a name listed twice is one dependency with both types',
    );
    assert.equal(element('cm.bst').dependencies[0]!.name, 'sub.bst:thing.bst', 'the link stands for its target');
    assert.equal(rich.links?.get('thinglink.bst'), 'sub.bst:thing.bst');
  });

  it('reads subproject elements with their own project, options and element-name', () => {
    const thing = element('sub.bst:thing.bst');
    assert.equal(thing.project.name, 'subby');
    assert.equal(thing.file, 'sub.bst:elements/thing.bst');
    // bst 2.8.1
    assert.equal(thing.variables['element-name'], 'thing.bst');
    assert.equal(thing.variables['build-root'], '/buildstream/subby/thing.bst');
    assert.equal(thing.variables.where, 'dark-subby');
    assert.equal(thing.variables.prefix, '/usr');
    assert.deepEqual((thing.config as BuildConfig).installCommands, ['echo dark-subby /buildstream/subby/thing.bst']);
  });

  it('takes option values from the command line', async () => {
    const project = await loadProject(await writeProject(RICH), {
      maxJobs: 2,
      targets: ['base.bst'],
      options: [
        ['debug', 'true'],
        ['features', 'x11'],
      ],
    });
    const variables = project.elements.get('base.bst')!.variables;
    assert.equal(variables.greeting, 'debug-hello');
    assert.equal(variables.extra, undefined);
    assert.equal(variables.features, 'x11');
  });
});

describe('errors in BuildStream 2 projects name the file and line', () => {
  const load = async (files: Record<string, string>, targets = ['e.bst']) =>
    loadProject(await writeProject(files), { maxJobs: 2, targets });
  const conf = (extra = '') => `name: p\nmin-version: 2.0\nelement-path: elements\n${extra}`;

  it('refuses min-version outside BuildStream 2.0 to 2.8', async () => {
    await rejectsAt(
      load({ 'project.conf': 'name: p\nmin-version: 3.0\n' }),
      'project.conf',
      2,
      /requires BuildStream 3/,
    );
    await rejectsAt(load({ 'project.conf': 'name: p\nmin-version: 2.9\n' }), 'project.conf', 2, /up to 2\.8/);
    await rejectsAt(load({ 'project.conf': 'name: p\nmin-version: two\n' }), 'project.conf', 2, /MAJOR\.MINOR/);
  });

  it('reports unknown project.conf keys and format-1 keys', async () => {
    await rejectsAt(
      load({ 'project.conf': conf('format-version: 18\n'), 'elements/e.bst': 'kind: stack\n' }),
      'project.conf',
      4,
      /unknown key 'format-version'/,
    );
  });

  it('requires plugin kinds to be declared and implemented', async () => {
    await rejectsAt(
      load({ 'project.conf': conf(), 'elements/e.bst': 'kind: make\n' }),
      'elements/e.bst',
      1,
      /element kind 'make' is not declared in project.conf 'plugins' \(it comes from the pip package 'buildstream-plugins'\)/,
    );
    await rejectsAt(
      load({
        'project.conf': conf('plugins:\n- origin: local\n  path: plugins\n  elements: [mine]\n'),
        'plugins/mine.py': '',
        'elements/e.bst': 'kind: mine\n',
      }),
      'elements/e.bst',
      1,
      /local Python plugin.*Granary cannot run Python plugins/,
    );
    await rejectsAt(
      load({
        'project.conf': conf('plugins:\n- origin: pip\n  package-name: buildstream-plugins\n  elements: [make]\n'),
        'elements/e.bst': 'kind: stack\nsources:\n- kind: git\n  url: x\n',
      }),
      'elements/e.bst',
      3,
      /source kind 'git' is not declared/,
    );
  });

  it('reports bad option values and conditions where they are written', async () => {
    const options = 'options:\n  debug:\n    type: bool\n    description: d\n    default: maybe\n';
    await rejectsAt(
      load({ 'project.conf': conf(options), 'elements/e.bst': 'kind: stack\n' }),
      'project.conf',
      8,
      /invalid value 'maybe'/,
    );
    const good = 'options:\n  debug:\n    type: bool\n    description: d\n    default: false\n';
    await rejectsAt(
      load({
        'project.conf': conf(good),
        'elements/e.bst': 'kind: stack\nvariables:\n  (?):\n  - debug = 1:\n      x: y\n',
      }),
      'elements/e.bst',
      4,
      /cannot evaluate condition 'debug = 1'/,
    );
    await rejectsAt(
      load({
        'project.conf': conf(good),
        'elements/e.bst': 'kind: stack\n(?):\n- not debug:\n    (!): debug builds only\n',
      }),
      'elements/e.bst',
      4,
      /debug builds only/,
    );
    await rejectsAt(
      load({ 'project.conf': conf(`${good}(?):\n- debug:\n    name: other\n`), 'elements/e.bst': 'kind: stack\n' }),
      'project.conf',
      11,
      /'name' cannot be set conditionally/,
    );
  });

  it('reports missing and recursive includes', async () => {
    await rejectsAt(
      load({ 'project.conf': conf(), 'elements/e.bst': 'kind: stack\n(@): nothing.yml\n' }),
      'elements/e.bst',
      2,
      /included file 'nothing.yml' does not exist/,
    );
    await rejectsAt(
      load({
        'project.conf': conf(),
        'a.yml': '(@): b.yml\n',
        'b.yml': '(@): a.yml\n',
        'elements/e.bst': 'kind: stack\n(@): a.yml\n',
      }),
      'b.yml',
      1,
      /recursive include of 'a.yml'/,
    );
  });

  it('reports bad dependencies at the line that declares them', async () => {
    await rejectsAt(
      load({ 'project.conf': conf(), 'elements/e.bst': 'kind: stack\ndepends:\n- missing.bst\n' }),
      'elements/e.bst',
      3,
      /element 'missing.bst' does not exist in element-path 'elements'/,
    );
    await rejectsAt(
      load({
        'project.conf': conf(),
        'elements/j.bst': 'kind: junction\nsources:\n- kind: local\n  path: sub\n',
        'sub/project.conf': 'name: s\nmin-version: 2.0\n',
        'elements/e.bst': 'kind: stack\ndepends:\n- j.bst\n',
      }),
      'elements/e.bst',
      3,
      /cannot depend on the junction 'j.bst'/,
    );
    await rejectsAt(
      load({
        'project.conf': conf(),
        'elements/s.bst': 'kind: stack\n',
        'elements/e.bst': 'kind: stack\nbuild-depends:\n- s.bst\n',
      }),
      'elements/e.bst',
      3,
      /all dependencies of a stack element must be both build and runtime/,
    );
    await rejectsAt(
      load({ 'project.conf': conf(), 'elements/e.bst': 'kind: stack\ndepends:\n- filename: x.bst\n  strict: false\n' }),
      'elements/e.bst',
      4,
      /'strict' to false is not supported/,
    );
    await rejectsAt(
      load({ 'project.conf': conf(), 'elements/e.bst': 'kind: import\n' }),
      'elements/e.bst',
      1,
      /an import element needs at least one source/,
    );
  });

  it('refuses one project loaded through two junctions unless both are marked as duplicates', async () => {
    const files = {
      'project.conf': conf(),
      'elements/one.bst': 'kind: junction\nsources:\n- kind: local\n  path: sub\n',
      'elements/two.bst': 'kind: junction\nsources:\n- kind: local\n  path: sub\n',
      'sub/project.conf': 'name: sub\nmin-version: 2.0\n',
      'sub/s.bst': 'kind: stack\n',
      'elements/e.bst': 'kind: stack\ndepends:\n- one.bst:s.bst\n- two.bst:s.bst\n',
    };
    await rejectsAt(
      load(files),
      'elements/e.bst',
      4,
      /project 'sub' is loaded through several junctions \(one.bst, two.bst\)/,
    );
    const allowed = await load({
      ...files,
      'project.conf': conf('junctions:\n  duplicates:\n    sub: [one.bst, two.bst]\n'),
    });
    assert.deepEqual(
      allowed.elements.get('e.bst')!.dependencies.map((d) => d.name),
      ['one.bst:s.bst', 'two.bst:s.bst'],
    );
  });

  it('refuses YAML anchors and protected variables', async () => {
    await rejectsAt(
      load({ 'project.conf': conf(), 'elements/e.bst': 'kind: stack\nvariables:\n  a: &x one\n  b: *x\n' }),
      'elements/e.bst',
      3,
      /anchors and aliases are not allowed/,
    );
    await rejectsAt(
      load({ 'project.conf': conf(), 'elements/e.bst': 'kind: stack\nvariables:\n  element-name: x\n' }),
      'elements/e.bst',
      3,
      /'element-name' is set automatically/,
    );
  });
});
