/**
 * Granary's meta-build client and Bazel 4.2.3 exchanging artifacts through the
 * Remote Asset API of one `granary serve` (with its embedded worker):
 *
 * (a) libgreet.bst of examples/hello is built by the meta-build client and
 *     published under an unreachable https://...invalid URI; a Bazel workspace
 *     declares it as an http_archive (the snippet `granary publish` prints) and a
 *     cc_binary links against it, with the download going through
 *     --experimental_remote_downloader and every action through --remote_executor.
 * (b) Bazel builds a tool remotely, its output directory is pushed with
 *     `granary push-dir`, and elements with a `remote-asset` source and a `cas`
 *     source use it.
 * (c) `granary provenance` prints the record of (a), and rebuilding the element
 *     from it (all caches bypassed) reproduces the same artifact and tarball.
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import {
  bazel,
  processSummary,
  remoteDownloaderFlags,
  remoteExecutionFlags,
  spawnsOtherThan,
} from '../support/bazel.js';
import { bazelWorkspace } from '../support/bazelWorkspace.js';
import { helloProject } from '../support/buildStreamProjects.js';
import { requireCommand, run } from '../support/commands.js';
import { startFarm, useFarm } from '../support/farm.js';
import { clientEnvironment, granary } from '../support/granaryClient.js';
import { writeFiles } from '../support/scratch.js';
import { makeSysroot, sysrootUnavailable } from '../support/sysroot.js';

const LIBGREET_URI = 'https://artifacts.invalid/libgreet.tar';
const TOOL_URI = 'https://artifacts.invalid/bazel-tool';

const skip = requireCommand('bazel') || sysrootUnavailable();

/** Bazel's spawn kinds other than remote ones: anything here ran on the client. */
const localKinds = (output: string) => spawnsOtherThan(processSummary(output), ['remote', 'remote cache hit']);

/** The http_archive snippet `granary publish` prints (from its load() to the closing parenthesis). */
function snippetOf(output: string): string {
  const start = output.indexOf('load("@bazel_tools//tools/build_defs/repo:http.bzl"');
  assert.ok(start >= 0, output);
  const end = output.indexOf('""",\n)', start);
  assert.ok(end > start, output);
  return output.slice(start, end + 6);
}

const APP_FILES = {
  'app/BUILD': [
    'load("@rules_cc//cc:defs.bzl", "cc_binary")',
    '',
    'cc_binary(',
    '    name = "greeter",',
    '    srcs = ["main.c"],',
    '    deps = ["@libgreet//:libgreet"],',
    ')',
    '',
  ].join('\n'),
  'app/main.c':
    '#include <stdio.h>\n#include <greet.h>\n\nint main(void) {\n  printf("%s\\n", greet_message());\n  return 0;\n}\n',
};

const TOOL_FILES = {
  'tool/BUILD': [
    'load("@rules_cc//cc:defs.bzl", "cc_binary")',
    'load(":bundle.bzl", "bundle")',
    '',
    'cc_binary(',
    '    name = "hello_tool",',
    '    srcs = ["hello_tool.c"],',
    '    linkopts = ["-static"],',
    ')',
    '',
    'bundle(',
    '    name = "bundle",',
    '    tool = ":hello_tool",',
    ')',
    '',
  ].join('\n'),
  'tool/hello_tool.c':
    '#include <stdio.h>\n\nint main(void) {\n  puts("hello from a tool built by Bazel");\n  return 0;\n}\n',
  'tool/bundle.bzl': [
    '"""A directory output: the tool under bin/ and what it prints under share/."""',
    '',
    'def _bundle_impl(ctx):',
    '    out = ctx.actions.declare_directory(ctx.label.name)',
    '    ctx.actions.run_shell(',
    '        outputs = [out],',
    '        inputs = [ctx.executable.tool],',
    '        command = \'mkdir -p "$1/bin" "$1/share/tool" && cp "$2" "$1/bin/hello_tool" && "$2" > "$1/share/tool/message.txt"\',',
    '        arguments = [out.path, ctx.executable.tool.path],',
    '        mnemonic = "Bundle",',
    '    )',
    '    return [DefaultInfo(files = depset([out]))]',
    '',
    'bundle = rule(',
    '    implementation = _bundle_impl,',
    '    attrs = {"tool": attr.label(executable = True, cfg = "exec")},',
    ')',
    '',
  ].join('\n'),
};

const ELEMENTS = {
  // Runs the Bazel-built tool inside the build sandbox and installs it with its output.
  'elements/use-tool.bst': [
    'kind: manual',
    'build-depends:',
    '- base.bst',
    'sources:',
    '- kind: remote-asset',
    `  uri: ${TOOL_URI}`,
    '  type: directory',
    'config:',
    '  install-commands:',
    '  - mkdir -p "%{install-root}/usr/bin" "%{install-root}/usr/share/use-tool"',
    '  - cp bin/hello_tool "%{install-root}/usr/bin/hello_tool"',
    '  - ./bin/hello_tool > "%{install-root}/usr/share/use-tool/output.txt"',
    '  - cp share/tool/message.txt "%{install-root}/usr/share/use-tool/from-bazel.txt"',
    '',
  ].join('\n'),
};

describe('Granary and Bazel 4.2.3 exchange artifacts through the Remote Asset API', {
  skip,
  timeout: 40 * 60_000,
}, () => {
  const farm = useFarm({ name: 'interop', embeddedWorkers: 2 });
  let scratch: string;
  let project: string;
  let env: NodeJS.ProcessEnv;
  let published: { sha256: string; output: string } | undefined;

  const client = (...args: string[]) => granary([...args, '--remote', farm.url], project, env);
  const executions = (hash: string) => farm.server.output().split(`granary worker: executing ${hash}/`).length - 1;
  const bazelRemote = () => [...remoteDownloaderFlags(farm.url), ...remoteExecutionFlags(farm.url)];

  before(() => {
    scratch = farm.scratch;
    project = helloProject(join(scratch, 'hello'), makeSysroot());
    writeFiles(project, ELEMENTS);
    env = clientEnvironment(scratch);
  });

  test('(a) an element published by the meta-build client is an http_archive Bazel fetches and links against, through Granary only', async () => {
    const build = await client('build', 'libgreet.bst');
    assert.equal(build.status, 0, build.output);
    const publish = await client('publish', 'libgreet.bst', '--uri', LIBGREET_URI);
    assert.equal(publish.status, 0, publish.output);
    const sha256 = /sha256 ([0-9a-f]{64})/.exec(publish.stdout)?.[1];
    assert.ok(sha256, publish.output);
    published = { sha256, output: publish.stdout };
    const snippet = snippetOf(publish.stdout);
    assert.match(snippet, new RegExp(`sha256 = "${sha256}"`));
    assert.match(snippet, /srcs = \["usr\/lib\/libgreet\.a"\]/);

    // Publishing again gives the same tarball: it is deterministic.
    const again = await client('publish', 'libgreet.bst', '--uri', LIBGREET_URI);
    assert.equal(again.status, 0, again.output);
    assert.equal(/sha256 ([0-9a-f]{64})/.exec(again.stdout)?.[1], sha256);

    const workspace = bazelWorkspace(4, join(scratch, 'ws-a'));
    appendFileSync(join(workspace, 'WORKSPACE'), `\n${snippet}\n`);
    writeFiles(workspace, APP_FILES);
    const result = bazel(workspace, join(scratch, 'root-a'), 'build', [...bazelRemote(), '//app:greeter']);
    assert.equal(result.status, 0, result.output);
    assert.deepEqual(localKinds(result.output), [], `every action must run remotely: ${result.output}`);
    assert.ok((processSummary(result.output).remote ?? 0) >= 2, result.output);
    assert.equal(run(join(workspace, 'bazel-bin', 'app', 'greeter'), [], workspace).trim(), 'greetings from libgreet');
    // The archive Bazel unpacked is the artifact, files at the top level.
    const outputBase = readdirSync(join(scratch, 'root-a')).find((d) =>
      existsSync(join(scratch, 'root-a', d, 'external', 'libgreet')),
    );
    assert.ok(outputBase, 'the output base holds the fetched repository');
    const external = join(scratch, 'root-a', outputBase, 'external', 'libgreet');
    assert.ok(statSync(join(external, 'usr', 'include', 'greet.h')).isFile());
    assert.ok(statSync(join(external, 'usr', 'lib', 'libgreet.a')).isFile());
  });

  test('(b) a directory Bazel built remotely, pushed with push-dir, is the source of an element (remote-asset and cas)', async () => {
    const workspace = bazelWorkspace(4, join(scratch, 'ws-b'));
    writeFiles(workspace, TOOL_FILES);
    const result = bazel(workspace, join(scratch, 'root-b'), 'build', [
      ...remoteExecutionFlags(farm.url),
      '//tool:bundle',
    ]);
    assert.equal(result.status, 0, result.output);
    assert.deepEqual(localKinds(result.output), [], `every action must run remotely: ${result.output}`);
    const bundle = join(workspace, 'bazel-bin', 'tool', 'bundle');
    assert.equal(
      readFileSync(join(bundle, 'share', 'tool', 'message.txt'), 'utf8'),
      'hello from a tool built by Bazel\n',
    );

    const push = await granary(['push-dir', bundle, '--uri', TOOL_URI, '--remote', farm.url], scratch, env);
    assert.equal(push.status, 0, push.output);
    const root = /root ([0-9a-f]{64}\/\d+)/.exec(push.stdout)?.[1];
    assert.ok(root, push.output);

    const build = await client('build', 'use-tool.bst');
    assert.equal(build.status, 0, build.output);
    const out = join(scratch, 'use-tool-out');
    const checkout = await client('checkout', 'use-tool.bst', out);
    assert.equal(checkout.status, 0, checkout.output);
    assert.equal(
      readFileSync(join(out, 'usr', 'share', 'use-tool', 'output.txt'), 'utf8'),
      'hello from a tool built by Bazel\n',
    );
    assert.equal(
      readFileSync(join(out, 'usr', 'share', 'use-tool', 'from-bazel.txt'), 'utf8'),
      'hello from a tool built by Bazel\n',
    );
    assert.equal(run(join(out, 'usr', 'bin', 'hello_tool'), [], out).trim(), 'hello from a tool built by Bazel');

    // The same tree by digest, with the cas source kind.
    writeFiles(project, {
      'elements/from-cas.bst': `kind: import\nsources:\n- kind: cas\n  digest: ${root}\nconfig:\n  target: /opt/tool\n`,
    });
    const imported = await client('build', 'from-cas.bst');
    assert.equal(imported.status, 0, imported.output);
    const casOut = join(scratch, 'from-cas-out');
    assert.equal((await client('checkout', 'from-cas.bst', casOut)).status, 0);
    assert.equal(
      readFileSync(join(casOut, 'opt', 'tool', 'share', 'tool', 'message.txt'), 'utf8'),
      'hello from a tool built by Bazel\n',
    );

    // An asset nobody pushed is a clear error, not a build.
    writeFiles(project, {
      'elements/missing.bst':
        'kind: import\nsources:\n- kind: remote-asset\n  uri: https://artifacts.invalid/nothing\n  type: directory\n',
    });
    const missing = await client('show', 'missing.bst');
    assert.notEqual(missing.status, 0);
    assert.match(
      missing.stderr,
      /elements\/missing\.bst line \d+: remote-asset source: the farm has no directory asset https:\/\/artifacts\.invalid\/nothing/,
    );
  });

  test('(c) the provenance record names what built the artifact, and rebuilding from it reproduces the artifact', async () => {
    assert.ok(published, 'test (a) publishes libgreet');
    const printed = await granary(['provenance', LIBGREET_URI, '--remote', farm.url], scratch, env);
    assert.equal(printed.status, 0, printed.output);
    const record = JSON.parse(printed.stdout);
    assert.equal(record._type, 'https://in-toto.io/Statement/v1');
    assert.equal(record.predicateType, 'https://slsa.dev/provenance/v1');
    assert.deepEqual(record.subject, [
      { name: 'libgreet.tar', uri: LIBGREET_URI, digest: { sha256: published.sha256 } },
    ]);
    const definition = record.predicate.buildDefinition;
    assert.equal(definition.externalParameters.project, 'hello');
    assert.equal(definition.externalParameters.element, 'libgreet.bst');
    const names = definition.resolvedDependencies.map((d: { name: string }) => d.name);
    assert.ok(
      names.includes('libgreet.bst#sources[0]') && names.includes('base.bst#sources[0]') && names.includes('base.bst'),
      names.join(', '),
    );
    const base = definition.resolvedDependencies.find((d: { name: string }) => d.name === 'base.bst');
    assert.match(base.annotations.cacheKey, /^[0-9a-f]{64}$/);
    assert.match(base.annotations.artifactRoot, /^[0-9a-f]{64}\/\d+$/);
    const action = record.predicate.runDetails.byproducts.find(
      (b: { name: string }) => b.name === 'action:libgreet.bst',
    );
    assert.ok(action, printed.stdout);

    // The record's key is the element's key now.
    const show = await client('show', 'libgreet.bst');
    assert.equal(show.status, 0, show.output);
    const shown = /^\S+\s+([0-9a-f]{16}) libgreet\.bst$/m.exec(show.stdout)?.[1];
    assert.equal(shown, definition.externalParameters.cacheKey.slice(0, 16), show.output);

    // Rebuild from the record with every cache bypassed: the recorded Action runs again, same artifact, same tarball.
    const before = executions(action.digest.sha256);
    assert.ok(before >= 1, 'the first build executed the recorded action');
    const rebuilt = await client('provenance', LIBGREET_URI, '--rebuild', '--project', project);
    assert.equal(rebuilt.status, 0, rebuilt.output);
    assert.match(
      rebuilt.stdout,
      new RegExp(`reproduced libgreet\\.bst: artifact [0-9a-f]{64}/\\d+, libgreet\\.tar sha256 ${published.sha256}`),
    );
    assert.equal(executions(action.digest.sha256), before + 1, 'the rebuild executed the Action again');

    // The record is portable: a fresh farm that never saw the project rebuilds everything and gets the same artifact.
    const recordFile = join(scratch, 'libgreet.provenance.json');
    writeFileSync(recordFile, printed.stdout);
    const fresh = await startFarm({ name: 'interop-fresh', embeddedWorkers: 2 });
    try {
      const elsewhere = await granary(
        ['provenance', '--record', recordFile, '--rebuild', '--project', project, '--remote', fresh.url],
        scratch,
        env,
      );
      assert.equal(elsewhere.status, 0, elsewhere.output);
      assert.match(elsewhere.stdout, new RegExp(`reproduced libgreet\\.bst: .*sha256 ${published.sha256}`));
      assert.match(elsewhere.stderr, /built\s+base\.bst/, 'the fresh farm built the dependency too');
      assert.doesNotMatch(elsewhere.stdout, /note: dependency/);
    } finally {
      await fresh.stop();
    }

    // A project that no longer matches the record cannot claim to reproduce it.
    writeFiles(project, {
      'files/libgreet/greet.c': '#include "greet.h"\n\nconst char *greet_message(void) { return "changed"; }\n',
    });
    const mismatch = await client('provenance', LIBGREET_URI, '--rebuild', '--project', project);
    assert.notEqual(mismatch.status, 0);
    assert.match(mismatch.stderr, /does not match the record[\s\S]*libgreet\.bst: cache key/);
  });
});
