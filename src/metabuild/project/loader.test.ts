import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { rejectsAt, removeProjects, throwsAt, writeProject } from '../../../test/support/project.js';
import type { BuildConfig } from './kinds.js';
import { loadProject, type Project, resolveTargets } from './loader.js';

after(removeProjects);

// Values below marked "bst 1.6.8" were produced by `bst show --format %{vars}` of
// BuildStream 1.6.8 on the same files.
const BST_STRIP_BINARIES_OPT =
  'cd "/buildstream-install" && find -type f \\\n' +
  "  '(' -perm -111 -o -name '*.so*' \\\n" +
  "      -o -name '*.cmxs' -o -name '*.node' ')' \\\n" +
  '  -exec sh -ec \\\n' +
  `  'read -n4 hdr <"$1" # check for elf header\n` +
  '   if [ "$hdr" != "$(printf \\\\x7fELF)" ]; then\n' +
  '       exit 0\n' +
  '   fi\n' +
  '   debugfile="/buildstream-install/opt/lib/debug/$1"\n' +
  '   mkdir -p "$(dirname "$debugfile")"\n' +
  '   objcopy --only-keep-debug --compress-debug-sections "$1" "$debugfile"\n' +
  '   chmod 644 "$debugfile"\n' +
  '   strip --remove-section=.comment --remove-section=.note --strip-unneeded "$1"\n' +
  `   objcopy --add-gnu-debuglink "$debugfile" "$1"' - {} ';'`;

const BST_AUTOGEN =
  'export NOCONFIGURE=1;\n\nif [ -x ./configure ]; then true;\nelif [ -x autogen ]; then ./autogen;\n' +
  'elif [ -x autogen.sh ]; then ./autogen.sh;\nelif [ -x bootstrap ]; then ./bootstrap;\n' +
  'elif [ -x bootstrap.sh ]; then ./bootstrap.sh;\nelse autoreconf -ivf;\nfi';

const configureFor = (prefix: string, extra: string) =>
  `./configure --prefix=${prefix} \\\n--exec-prefix=${prefix} \\\n--bindir=${prefix}/bin \\\n` +
  `--sbindir=${prefix}/sbin \\\n--sysconfdir=/etc \\\n--datadir=${prefix}/share \\\n` +
  `--includedir=${prefix}/include \\\n--libdir=${prefix}/lib \\\n--libexecdir=${prefix}/libexec \\\n` +
  `--localstatedir=/var \\\n--sharedstatedir=${prefix}/com \\\n--mandir=${prefix}/share/man \\\n` +
  `--infodir=${prefix}/share/info ${extra}`;

const DEMO = {
  'project.conf': [
    'name: demo',
    'element-path: elements',
    'aliases:',
    '  gnu: https://ftp.gnu.org/gnu/',
    'variables:',
    '  prefix: /opt',
    '  make: project-make',
    'environment:',
    '  FOO: "%{prefix}/foo"',
    'environment-nocache: [FOO]',
    'split-rules:',
    '  extra:',
    '  - "%{datadir}/extra"',
    'elements:',
    '  autotools:',
    '    variables:',
    '      conf-global: --disable-static',
    '',
  ].join('\n'),
  'elements/base.bst': 'kind: import\nsources:\n- kind: local\n  path: files\n',
  'elements/hello.bst': [
    'kind: autotools',
    'description: Hello',
    'depends:',
    '- base.bst',
    'variables:',
    '  conf-local: --enable-x',
    'environment:',
    '  BAR: "%{bindir}"',
    'config:',
    '  configure-commands:',
    '    (<):',
    '    - echo before',
    '    (>):',
    '    - echo after',
    '  install-commands:',
    '    (>):',
    '    - rm -f %{install-root}%{libdir}/*.la',
    'public:',
    '  bst:',
    '    integration-commands:',
    '    - ldconfig %{libdir}',
    '    split-rules:',
    '      devel:',
    '        (>):',
    '        - "%{libdir}/foo"',
    '  other:',
    '    key: "%{not-expanded}"',
    'sources:',
    '- kind: tar',
    '  url: gnu:hello/hello-2.12.tar.gz',
    '  ref: 1234',
    '',
  ].join('\n'),
  'elements/cm.bst': 'kind: cmake\ndepends: [base.bst]\nvariables:\n  notparallel: true\n',
  'elements/mk.bst': 'kind: make\ndepends: [base.bst]\n',
  'elements/man.bst': "kind: manual\ndepends: [base.bst]\nconfig:\n  build-commands: ['%{make} -j%{max-jobs}']\n",
  'elements/comp.bst': 'kind: compose\nbuild-depends: [hello.bst]\nconfig:\n  include: [runtime]\n',
  'elements/st.bst': 'kind: stack\ndepends: [hello.bst, mk.bst]\n',
  'elements/libs/deep.bst': 'kind: stack\nruntime-depends: [st.bst]\nsandbox:\n  build-uid: 1000\n',
  'elements/.hidden/skipped.bst': 'this: is not even an element\n',
};

let demo: Project;
before(async () => {
  demo = await loadProject(await writeProject(DEMO), { maxJobs: 2 });
});

const element = (name: string) => {
  const found = demo.elements.get(name);
  assert.ok(found, `element ${name}`);
  return found;
};
const build = (name: string) => element(name).config as BuildConfig;

describe('loadProject', () => {
  it('loads project.conf and every element under element-path', () => {
    assert.equal(demo.config.name, 'demo');
    assert.equal(demo.config.elementPath, 'elements');
    assert.deepEqual(demo.config.aliases, { gnu: 'https://ftp.gnu.org/gnu/' });
    assert.deepEqual(
      [...demo.elements.keys()],
      ['base.bst', 'cm.bst', 'comp.bst', 'hello.bst', 'libs/deep.bst', 'man.bst', 'mk.bst', 'st.bst'],
    );
    const hello = element('hello.bst');
    assert.equal(hello.kind, 'autotools');
    assert.equal(hello.description, 'Hello');
    assert.equal(hello.file, 'elements/hello.bst');
    assert.equal(hello.line, 1);
    assert.deepEqual(hello.dependencies, [{ name: 'base.bst', type: 'all', file: 'elements/hello.bst', line: 4 }]);
    assert.equal(element('libs/deep.bst').file, 'elements/libs/deep.bst');
  });

  it('expands autotools commands exactly like BuildStream 1.6.8', () => {
    const hello = build('hello.bst');
    assert.deepEqual(hello.configureCommands, [
      'echo before',
      BST_AUTOGEN,
      configureFor('/opt', ' --disable-static --enable-x'),
      'echo after',
    ]);
    // bst 1.6.8: the project-wide `make` variable is overridden by the autotools default.
    assert.deepEqual(hello.buildCommands, ['make']);
    assert.deepEqual(hello.installCommands, [
      'make -j1 DESTDIR="/buildstream-install" install',
      'rm -f /buildstream-install/opt/lib/*.la',
    ]);
    assert.deepEqual(hello.stripCommands, [BST_STRIP_BINARIES_OPT]);
  });

  it('expands make, cmake and manual elements like BuildStream 1.6.8', () => {
    assert.deepEqual(build('mk.bst').buildCommands, ['make PREFIX="/opt"']);
    assert.deepEqual(build('mk.bst').installCommands, [
      'make -j1 PREFIX="/opt" DESTDIR="/buildstream-install" install',
    ]);
    assert.deepEqual(build('cm.bst').configureCommands, [
      'cmake -B_builddir -H. -G"Unix Makefiles" -DCMAKE_INSTALL_PREFIX:PATH="/opt" \\\n-DCMAKE_INSTALL_LIBDIR:PATH="lib"   ',
    ]);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell variable, not a template
    assert.deepEqual(build('cm.bst').buildCommands, ['cmake --build _builddir -- ${JOBS}']);
    assert.deepEqual(build('cm.bst').installCommands, [
      'env DESTDIR="/buildstream-install" cmake --build _builddir --target install',
    ]);
    // manual has no `make` default, so the project's applies.
    assert.deepEqual(build('man.bst'), {
      type: 'build',
      configureCommands: [],
      buildCommands: ['project-make -j2'],
      installCommands: [],
      stripCommands: [BST_STRIP_BINARIES_OPT],
      createDevShm: false,
    });
  });

  it('resolves variables with the automatic ones', () => {
    const vars = element('hello.bst').variables;
    assert.equal(vars['project-name'], 'demo');
    assert.equal(vars['element-name'], 'hello.bst');
    assert.equal(vars['max-jobs'], '2');
    assert.equal(vars['build-root'], '/buildstream/demo/hello.bst');
    assert.equal(vars['install-root'], '/buildstream-install');
    assert.equal(vars.libdir, '/opt/lib');
    assert.equal(vars.debugdir, '/opt/lib/debug');
    assert.equal(vars['conf-global'], '--disable-static');
    assert.equal(element('libs/deep.bst').variables['build-root'], '/buildstream/demo/libs/deep.bst');
    // bst 1.6.8: notparallel forces max-jobs to 1.
    assert.equal(element('cm.bst').variables['max-jobs'], '1');
  });

  it('composes the environment: project, kind defaults, element', () => {
    const hello = element('hello.bst');
    assert.deepEqual(hello.environment, {
      PATH: '/usr/bin:/bin:/usr/sbin:/sbin',
      SHELL: '/bin/sh',
      TERM: 'dumb',
      USER: 'tomjon',
      USERNAME: 'tomjon',
      LOGNAME: 'tomjon',
      LC_ALL: 'C',
      HOME: '/tmp',
      TZ: 'UTC',
      SOURCE_DATE_EPOCH: '1320937200',
      FOO: '/opt/foo',
      MAKEFLAGS: '-j2',
      V: '1',
      BAR: '/opt/bin',
    });
    assert.deepEqual(hello.environmentNocache, ['FOO', 'MAKEFLAGS', 'V']);
    assert.equal(element('cm.bst').environment.JOBS, '-j1');
    assert.equal(element('base.bst').environment.MAKEFLAGS, undefined);
  });

  it('composes and expands split rules and public data', () => {
    const hello = element('hello.bst');
    assert.deepEqual(hello.splitRules.devel, [
      '/opt/include',
      '/opt/include/**',
      '/opt/lib/lib*.a',
      '/opt/lib/lib*.la',
      '/opt/lib/pkgconfig/*.pc',
      '/opt/share/pkgconfig/*.pc',
      '/opt/share/aclocal/*.m4',
      '/opt/lib/foo',
    ]);
    assert.deepEqual(hello.splitRules.runtime, ['/opt/bin/*', '/opt/sbin/*', '/opt/libexec/*', '/opt/lib/lib*.so*']);
    assert.deepEqual(hello.splitRules.extra, ['/opt/share/extra']);
    assert.deepEqual(Object.keys(hello.splitRules), ['runtime', 'devel', 'debug', 'doc', 'locale', 'extra']);
    assert.deepEqual(hello.integrationCommands, ['ldconfig /opt/lib']);
    assert.deepEqual(hello.public.other, { key: '%{not-expanded}' });
    assert.deepEqual((hello.public.bst as Record<string, unknown>)['integration-commands'], ['ldconfig /opt/lib']);
    assert.deepEqual((hello.public.bst as Record<string, unknown>)['split-rules'], hello.splitRules);
    assert.deepEqual(element('base.bst').splitRules.debug, ['/opt/lib/debug', '/opt/lib/debug/**']);
  });

  it('reads import, compose and stack configuration', () => {
    assert.deepEqual(element('base.bst').config, { type: 'import', source: '/', target: '/' });
    assert.deepEqual(element('comp.bst').config, {
      type: 'compose',
      integrate: true,
      include: ['runtime'],
      exclude: [],
      includeOrphans: true,
    });
    assert.deepEqual(element('st.bst').config, { type: 'stack' });
  });

  it('keeps sources raw, with their location', () => {
    const [source] = element('hello.bst').sources;
    assert.deepEqual(
      { kind: source!.kind, config: source!.config, file: source!.file, line: source!.line },
      {
        kind: 'tar',
        config: { url: 'gnu:hello/hello-2.12.tar.gz', ref: '1234' },
        file: 'elements/hello.bst',
        line: 29,
      },
    );
  });

  it('composes sandbox settings', () => {
    assert.deepEqual(element('base.bst').sandbox, {
      buildUid: 0,
      buildGid: 0,
      buildOs: undefined,
      buildArch: undefined,
    });
    assert.deepEqual(element('libs/deep.bst').sandbox, {
      buildUid: 1000,
      buildGid: 0,
      buildOs: undefined,
      buildArch: undefined,
    });
  });

  it('defaults max-jobs like BuildStream and element-path to the project directory', async () => {
    const dir = await writeProject({
      'project.conf': 'name: flat\n',
      'a.bst': 'kind: autotools\n',
      'sub/b.bst': 'kind: stack\n',
    });
    const project = await loadProject(dir);
    assert.deepEqual([...project.elements.keys()], ['a.bst', 'sub/b.bst']);
    const a = project.elements.get('a.bst')!;
    assert.equal(a.file, 'a.bst');
    assert.equal(a.variables['max-jobs'], String(Math.min(availableParallelism(), 8)));
    // bst 1.6.8 with the default prefix:
    assert.deepEqual((a.config as BuildConfig).installCommands, ['make -j1 DESTDIR="/buildstream-install" install']);
    assert.deepEqual((a.config as BuildConfig).configureCommands, [BST_AUTOGEN, configureFor('/usr', '  ')]);
  });

  it('applies precedence: project < kind defaults < elements overrides < element', async () => {
    const dir = await writeProject({
      'project.conf': [
        'name: p',
        'variables:',
        '  conf-local: project', // loses to the autotools default ''
        '  only-project: project',
        'environment:',
        '  V: project',
        'elements:',
        '  autotools:',
        '    variables:',
        '      make: override-make',
        '      conf-cmd: override-configure',
        '    environment:',
        '      MAKEFLAGS: override',
        '    config:',
        '      build-commands:',
        '        (>): [override-step]',
        '',
      ].join('\n'),
      'a.bst': 'kind: autotools\nvariables:\n  conf-cmd: element-configure\nenvironment:\n  EXTRA: "%{only-project}"\n',
      'b.bst': 'kind: autotools\nconfig:\n  build-commands: [replaced]\n',
    });
    const project = await loadProject(dir, { maxJobs: 3 });
    const a = project.elements.get('a.bst')!;
    assert.equal(a.variables['conf-local'], '');
    assert.equal(a.variables['only-project'], 'project');
    assert.equal(a.variables.make, 'override-make');
    assert.equal(a.variables['conf-cmd'], 'element-configure');
    assert.equal(a.environment.V, '1');
    assert.equal(a.environment.MAKEFLAGS, 'override');
    assert.equal(a.environment.EXTRA, 'project');
    assert.deepEqual((a.config as BuildConfig).buildCommands, ['override-make', 'override-step']);
    assert.deepEqual((project.elements.get('b.bst')!.config as BuildConfig).buildCommands, ['replaced']);
  });
});

describe('loadProject errors', () => {
  const failing = async (files: Record<string, string>) =>
    loadProject(await writeProject({ 'project.conf': 'name: p\n', ...files }));

  it('names the file and line of an unknown key', async () => {
    await rejectsAt(
      failing({ 'foo.bst': 'kind: manual\nbuild-commands: [make]\n' }),
      'foo.bst',
      2,
      /unknown key 'build-commands'/,
    );
  });

  it('names the file and line of an unknown element kind', async () => {
    await rejectsAt(failing({ 'x/y.bst': '# c\nkind: script\n' }), 'x/y.bst', 2, /unknown element kind 'script'/);
  });

  it('names the file and line of malformed YAML', async () => {
    await rejectsAt(failing({ 'bad.bst': 'kind: manual\nconfig: {\n' }), 'bad.bst', 3, /malformed YAML/);
    await rejectsAt(
      loadProject(await writeProject({ 'project.conf': 'name: p\nvariables:\n  a: 1\n b: 2\n' })),
      'project.conf',
      4,
      /malformed YAML/,
    );
  });

  it('names the file and line of undefined variables', async () => {
    await rejectsAt(
      failing({ 'u.bst': 'kind: manual\nconfig:\n  build-commands:\n  - make\n  - "make %{nope}"\n' }),
      'u.bst',
      5,
      /reference to undefined variable 'nope'/,
    );
    await rejectsAt(
      failing({ 'v.bst': 'kind: manual\nvariables:\n  a: "%{b}"\n' }),
      'v.bst',
      3,
      /undefined variable 'b'/,
    );
    await rejectsAt(
      failing({ 'e.bst': 'kind: manual\nenvironment:\n  X: "%{nope}"\n' }),
      'e.bst',
      3,
      /undefined variable 'nope'/,
    );
    await rejectsAt(
      failing({ 'i.bst': 'kind: import\nconfig:\n  target: "%{nope}"\n' }),
      'i.bst',
      3,
      /undefined variable 'nope'/,
    );
  });

  it('names every file and line of a variable cycle', async () => {
    await rejectsAt(
      loadProject(
        await writeProject({
          'project.conf': 'name: p\nvariables:\n  a: "%{b}"\n',
          'c.bst': 'kind: stack\nvariables:\n  b: "%{a}"\n',
        }),
      ),
      'project.conf',
      3,
      /circular variable reference: 'a' \(project\.conf line 3\) -> 'b' \(c\.bst line 3\) -> 'a'/,
    );
  });

  it('rejects list directives on lists that do not exist', async () => {
    await rejectsAt(
      failing({ 'd.bst': 'kind: import\nconfig:\n  extra:\n    (>): [x]\n' }),
      'd.bst',
      4,
      /list directive '\(>\)' on 'config.extra'/,
    );
  });

  it('rejects protected variables and bad sandbox ids', async () => {
    await rejectsAt(failing({ 'm.bst': 'kind: stack\nvariables:\n  max-jobs: 9\n' }), 'm.bst', 3, /set automatically/);
    await rejectsAt(
      failing({ 's.bst': 'kind: stack\nsandbox:\n  build-uid: root\n' }),
      's.bst',
      3,
      /build-uid' must be a non-negative integer/,
    );
  });
});

describe('resolveTargets', () => {
  it('returns the targets and all their dependencies, dependencies first', () => {
    const names = (targets: string[]) => resolveTargets(demo, targets).map((e) => e.name);
    assert.deepEqual(names(['st.bst']), ['base.bst', 'hello.bst', 'mk.bst', 'st.bst']);
    assert.deepEqual(names(['libs/deep.bst', 'comp.bst']), [
      'base.bst',
      'hello.bst',
      'mk.bst',
      'st.bst',
      'libs/deep.bst',
      'comp.bst',
    ]);
    assert.deepEqual(names(['./base.bst', 'base.bst']), ['base.bst']);
  });

  it('reports a dependency on a missing element with file and line', async () => {
    const project = await loadProject(
      await writeProject({
        'project.conf': 'name: p\nelement-path: elements\n',
        'elements/app.bst': 'kind: stack\ndescription: app\ndepends:\n- base.bst\n- libfoo.bst\n',
        'elements/base.bst': 'kind: stack\n',
      }),
    );
    throwsAt(
      () => resolveTargets(project, ['app.bst']),
      'elements/app.bst',
      5,
      /^elements\/app\.bst line 5: depends on 'libfoo\.bst' which does not exist$/,
    );
  });

  it('reports dependency cycles with every file and line', async () => {
    const project = await loadProject(
      await writeProject({
        'project.conf': 'name: p\n',
        'top.bst': 'kind: stack\ndepends: [a.bst]\n',
        'a.bst': 'kind: stack\ndepends:\n- b.bst\n',
        'b.bst': 'kind: stack\nbuild-depends:\n- ok.bst\n- c.bst\n',
        'c.bst': 'kind: stack\nruntime-depends:\n\n- a.bst\n',
        'ok.bst': 'kind: stack\n',
      }),
    );
    throwsAt(
      () => resolveTargets(project, ['top.bst']),
      'a.bst',
      3,
      /dependency cycle: 'a\.bst' \(a\.bst line 3: depends on 'b\.bst'\) -> 'b\.bst' \(b\.bst line 4: depends on 'c\.bst'\) -> 'c\.bst' \(c\.bst line 4: depends on 'a\.bst'\) -> 'a\.bst'/,
    );
    assert.deepEqual(
      resolveTargets(project, ['ok.bst']).map((e) => e.name),
      ['ok.bst'],
    );
  });

  it('reports a self-dependency', async () => {
    const project = await loadProject(
      await writeProject({ 'project.conf': 'name: p\n', 'self.bst': 'kind: stack\ndepends: [self.bst]\n' }),
    );
    throwsAt(
      () => resolveTargets(project, ['self.bst']),
      'self.bst',
      2,
      /dependency cycle: 'self\.bst' .* -> 'self\.bst'/,
    );
  });

  it('reports unknown targets', () => {
    assert.throws(
      () => resolveTargets(demo, ['nope.bst']),
      /element 'nope\.bst' does not exist in element-path 'elements'/,
    );
  });
});
