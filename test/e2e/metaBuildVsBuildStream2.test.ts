/**
 * Granary and BuildStream 2.8.1 (Debian sid's `buildstream` with
 * buildstream-plugins 2.8.0, run inside the sid root of test/e2e/sidroot, with
 * its local buildbox-run-bubblewrap sandbox) build the same BuildStream 2
 * project, and every artifact must be the same: paths, file contents, modes
 * and symlink targets.
 *
 * The project is examples/hello-bst2 (an import of the Debian sysroot from a
 * tarball, a make library, a manual application, a stack and a compose) plus:
 * probe.bst, which records what a build sees (environment, working directory,
 * user, umask, the shell's flags, max-jobs, the sandbox's root directory, how
 * an absolute symlink of the sysroot reads); a filter; and two junctions to a
 * subproject, one by a local path and one by a tarball of it (both setting a
 * project option of the subproject and overriding its base element with this
 * project's sysroot), with an element of this project built against an
 * element of the subproject, a link to it, and an element staged elsewhere
 * than '/' (`location`); and a script element running the application staged
 * at /target (`listing.bst`).
 *
 * Skipped locally when the sid root, the sysroot or bubblewrap is unavailable;
 * in CI those are failures.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PROBE_ELEMENT } from '../support/buildStreamProjects.js';
import { clientEnvironment, granary } from '../support/granaryClient.js';
import { REPO_ROOT } from '../support/repository.js';
import { removeQuietly, scratchDirectory, writeFiles } from '../support/scratch.js';
import { inSidrootAsync, prepareSidroot, type SidrootRun } from '../support/sidroot.js';
import { makeSysroot, sysrootUnavailable } from '../support/sysroot.js';
import { treeDifferences } from '../support/treeListing.js';

const sid = prepareSidroot();
const bwrapMissing =
  spawnSync('bwrap', ['--ro-bind', '/', '/', 'true']).status === 0 || process.env.CI
    ? false
    : 'bubblewrap cannot run here';
const skip = sid.skip || sysrootUnavailable() || bwrapMissing;

const ELEMENTS = [
  'base.bst',
  'libgreet.bst',
  'hello.bst',
  'stack.bst',
  'image.bst',
  'probe.bst',
  'headers.bst',
  'shout.bst',
  'greetings.bst:libshout.bst',
  'loud.bst',
  'listing.bst',
];

const EXTRA_FILES: Record<string, string> = {
  'elements/probe.bst': PROBE_ELEMENT,
  'elements/headers.bst': `kind: filter
description: The development files of libgreet

build-depends:
- libgreet.bst

config:
  include:
  - devel
`,
  'elements/greetings.bst': `kind: junction
sources:
- kind: local
  path: subprojects/greetings
config:
  options:
    volume: loud
  # The subproject builds on this project's sysroot.
  overrides:
    base.bst: base.bst
`,
  'elements/greetings-tarball.bst': `kind: junction
sources:
- kind: tar
  url: sysroot:greetings.tar.gz
  ref: GREETINGS_SHA256
config:
  overrides:
    base.bst: base.bst
`,
  'elements/shout-link.bst': `kind: link
config:
  target: greetings.bst:libshout.bst
`,
  'elements/shout.bst': `kind: manual
description: Built against a library of the subproject, which is also staged in /sysroot

build-depends:
- base.bst
- filename: shout-link.bst
  config:
    location: /
- filename: greetings.bst:libshout.bst
  config:
    location: /sysroot

config:
  install-commands:
  - mkdir -p "%{install-root}%{datadir}/shout"
  - cp /usr/share/libshout/volume "%{install-root}%{datadir}/shout/volume"
  - ls -R /sysroot > "%{install-root}%{datadir}/shout/sysroot"
`,
  'elements/listing.bst': `kind: script
description: Runs the application staged at /target over the sysroot at /, and records what it saw

build-depends:
- base.bst
- filename: hello.bst
  config:
    location: /target

config:
  commands:
  - mkdir -p "%{install-root}/usr/share/listing"
  - pwd > "%{install-root}/usr/share/listing/cwd"
  - ls -A /target/usr/bin > "%{install-root}/usr/share/listing/target-bin"
  - /target/usr/bin/hello > "%{install-root}/usr/share/listing/greeting"
  - ln -s greeting "%{install-root}/usr/share/listing/greeting-link"
`,
  'elements/loud.bst': `kind: manual
description: Built against the same subproject, reached through a junction to its tarball

build-depends:
- base.bst
- greetings-tarball.bst:libshout.bst

config:
  install-commands:
  - mkdir -p "%{install-root}%{datadir}/loud"
  - cp /usr/share/libshout/volume "%{install-root}%{datadir}/loud/volume"
`,
};

const SUBPROJECT: Record<string, string> = {
  'project.conf': `name: greetings
min-version: 2.0
element-path: elements
plugins:
- origin: pip
  package-name: buildstream-plugins
  elements: [make]
options:
  volume:
    type: enum
    description: How loud
    values: [quiet, loud]
    default: quiet
    variable: volume
`,
  'elements/libshout.bst': `kind: make
build-depends:
- base.bst
sources:
- kind: local
  path: files
config:
  install-commands:
    (>):
    - mkdir -p "%{install-root}%{datadir}/libshout"
    - echo "%{volume} from %{project-name}/%{element-name}" > "%{install-root}%{datadir}/libshout/volume"
`,
  'elements/base.bst': `kind: stack
description: Where the toolchain comes from; the junctions override it with their project's sysroot
`,
  'files/Makefile':
    'all:\n\techo nothing to build\ninstall:\n\tmkdir -p $(DESTDIR)/usr/lib\n\ttouch $(DESTDIR)/usr/lib/libshout.a\n',
};

describe('Granary and BuildStream 2.8.1 build the same artifacts from the same BuildStream 2 project', {
  skip,
  timeout: 40 * 60_000,
}, () => {
  let scratch: string;
  let mirror: string;
  let granaryProject: string;
  let bstProject: string;
  let granaryEnv: NodeJS.ProcessEnv;
  let bstConfig: string;

  const bst = (...args: string[]): Promise<SidrootRun> =>
    inSidrootAsync(sid.root, ['bst', '--no-colors', '--config', bstConfig, ...args], {
      binds: [scratch],
      cwd: bstProject,
      env: { HOME: join(scratch, 'bst-home') },
      timeoutMs: 20 * 60_000,
    });

  before(() => {
    assert.equal(sid.error, '', sid.error);
    scratch = scratchDirectory('meta-vs-bst2');
    const sysroot = makeSysroot();
    mirror = join(scratch, 'mirror');
    mkdirSync(mirror);
    try {
      linkSync(sysroot.path, join(mirror, 'sysroot.tar'));
    } catch {
      copyFileSync(sysroot.path, join(mirror, 'sysroot.tar'));
    }
    // The subproject, also as a tarball for the second junction.
    const subproject = join(scratch, 'greetings');
    writeFiles(subproject, SUBPROJECT);
    const tarball = join(mirror, 'greetings.tar.gz');
    const packed = spawnSync(
      'sh',
      [
        '-c',
        'tar --create --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" greetings | gzip -n > "$2"',
        'pack',
        scratch,
        tarball,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(packed.status, 0, packed.stderr);
    const greetingsSha256 = createHash('sha256').update(readFileSync(tarball)).digest('hex');

    const copy = (into: string) => {
      spawnSync('cp', ['-r', join(REPO_ROOT, 'examples', 'hello-bst2'), into]);
      writeFiles(into, EXTRA_FILES);
      writeFiles(join(into, 'subprojects', 'greetings'), SUBPROJECT);
      fill(join(into, 'project.conf'), { SYSROOT_DIRECTORY: mirror.replace(/^\/+/, '') });
      fill(join(into, 'elements', 'base.bst'), { SYSROOT_SHA256: sysroot.sha256 });
      fill(join(into, 'elements', 'greetings-tarball.bst'), { GREETINGS_SHA256: greetingsSha256 });
      // Both junctions lead to the project 'greetings', which BuildStream allows only when told.
      writeFileSync(
        join(into, 'project.conf'),
        `${readFileSync(join(into, 'project.conf'), 'utf8')}\njunctions:\n  duplicates:\n    greetings:\n    - greetings.bst\n    - greetings-tarball.bst\n`,
      );
      return into;
    };
    granaryProject = copy(join(scratch, 'granary-project'));
    bstProject = copy(join(scratch, 'bst-project'));
    granaryEnv = clientEnvironment(join(scratch, 'granary-env'));
    mkdirSync(join(scratch, 'bst-home'), { recursive: true });
    bstConfig = join(scratch, 'bst-home', 'buildstream.conf');
    writeFileSync(
      bstConfig,
      [
        `cachedir: ${join(scratch, 'bst-home', 'cache')}`,
        `logdir: ${join(scratch, 'bst-home', 'logs')}`,
        `sourcedir: ${join(scratch, 'bst-home', 'sources')}`,
        'scheduler:',
        '  on-error: quit',
        '',
      ].join('\n'),
    );
  });

  after(() => {
    if (scratch) removeQuietly(scratch);
  });

  test('bst is BuildStream 2.8.1', async () => {
    const version = await bst('--version');
    assert.equal(version.status, 0, version.output);
    assert.equal(version.stdout.trim(), '2.8.1');
  });

  test('both build every element', async () => {
    const [ours, theirs] = await Promise.all([
      granary(['build', ...ELEMENTS], granaryProject, granaryEnv),
      bst('build', ...ELEMENTS),
    ]);
    const tail = (text: string) => text.split('\n').slice(-60).join('\n');
    assert.equal(theirs.status, 0, `bst build failed:\n${tail(theirs.output)}\n--- granary ---\n${tail(ours.output)}`);
    assert.equal(ours.status, 0, ours.output);
  });

  for (const element of ELEMENTS) {
    test(`the artifacts of ${element} are the same`, async () => {
      const name = element.replaceAll(':', '_');
      const ourDirectory = join(scratch, 'granary-checkouts', name);
      const theirDirectory = join(scratch, 'bst-checkouts', name);
      const ours = await granary(['checkout', element, ourDirectory], granaryProject, granaryEnv);
      assert.equal(ours.status, 0, ours.output);
      const theirs = await bst('artifact', 'checkout', '--deps', 'none', element, '--directory', theirDirectory);
      assert.equal(theirs.status, 0, theirs.output.split('\n').slice(-30).join('\n'));
      const ourTree = describeWithModes(ourDirectory);
      const theirTree = describeWithModes(theirDirectory);
      if (element !== 'stack.bst') assert.ok(ourTree.length > 0, 'the artifact is not empty');
      const differences = treeDifferences(ourTree, theirTree);
      assert.deepEqual(differences, { onlyA: [], onlyB: [] }, `onlyA: Granary's checkout, onlyB: BuildStream's`);
    });
  }

  test('the subproject saw the option its junction set, and the probe ran as BuildStream runs commands', () => {
    const volume = readFileSync(
      join(scratch, 'granary-checkouts', 'greetings.bst_libshout.bst', 'usr', 'share', 'libshout', 'volume'),
      'utf8',
    );
    assert.equal(volume, 'loud from greetings/libshout.bst\n');
    const probe = join(scratch, 'granary-checkouts', 'probe.bst', 'usr', 'share', 'probe');
    assert.equal(readFileSync(join(probe, 'pwd'), 'utf8'), '/buildstream/hello-bst2/probe.bst\n');
    assert.match(readFileSync(join(probe, 'env'), 'utf8'), /^SOURCE_DATE_EPOCH=1321009871$/m);
  });
});

function fill(path: string, values: Record<string, string>): void {
  let text = readFileSync(path, 'utf8');
  for (const [placeholder, value] of Object.entries(values)) text = text.replaceAll(placeholder, value);
  writeFileSync(path, text);
}

/**
 * One line per path below `root`, sorted: `f PATH MODE SHA256` for files,
 * `l PATH -> TARGET` for symlinks, `d PATH MODE` for directories.
 */
function describeWithModes(root: string): string[] {
  const lines: string[] = [];
  const walk = (relative: string) => {
    for (const name of readdirSync(join(root, relative)).sort()) {
      const path = relative ? `${relative}/${name}` : name;
      const full = join(root, path);
      const stat = lstatSync(full);
      const mode = (stat.mode & 0o7777).toString(8);
      if (stat.isSymbolicLink()) lines.push(`l ${path} -> ${readlinkSync(full)}`);
      else if (stat.isDirectory()) {
        lines.push(`d ${path} ${mode}`);
        walk(path);
      } else if (stat.isFile()) {
        lines.push(`f ${path} ${mode} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`);
      } else lines.push(`? ${path}`);
    }
  };
  walk('');
  return lines;
}
