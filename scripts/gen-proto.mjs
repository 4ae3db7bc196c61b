// Generates TypeScript from the .proto schemas with buf (shipped inside its npm
// package, so this works offline) and the ts-proto plugin. The google.* schemas
// come from the google-proto-files package; our own build.bazel.* schemas live in
// src/proto. Output goes to src/gen, which is not committed.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const googleProtos = join(dirname(require.resolve('google-proto-files/package.json')), 'google');
const work = mkdtempSync(join(tmpdir(), 'granary-gen-'));
try {
  // buf brings google/protobuf itself; copy only the other google packages we use.
  const third = join(work, 'third_party', 'google');
  for (const sub of ['api', 'rpc', 'longrunning', 'bytestream', 'devtools/remoteworkers/v1test2']) {
    mkdirSync(join(third, sub), { recursive: true });
    cpSync(join(googleProtos, sub), join(third, sub), { recursive: true });
  }
  cpSync(join(root, 'src', 'proto'), join(work, 'ours'), { recursive: true });
  const plugin = join(root, 'node_modules', '.bin', 'protoc-gen-ts_proto');
  writeFileSync(join(work, 'buf.yaml'), 'version: v2\nmodules:\n  - path: ours\n  - path: third_party\n');
  const options = [
    'esModuleInterop=true',
    'importSuffix=.js',
    'env=node',
    'forceLong=number',
    'outputServices=grpc-js',
    'outputJsonMethods=false',
    'useDate=false',
    'useOptionals=none',
    'unrecognizedEnum=true',
  ];
  const paths = [
    'build/bazel',
    'granary',
    'google/bytestream/bytestream.proto',
    'google/longrunning/operations.proto',
    'google/rpc/status.proto',
    'google/rpc/error_details.proto',
    'google/devtools/remoteworkers/v1test2/bots.proto',
  ]
    .filter((p) => p.startsWith('google') || existsSync(join(root, 'src', 'proto', p)))
    .map((p) => (p.startsWith('google') ? `third_party/${p}` : `ours/${p}`));
  // Skip when nothing changed, and swap the output in whole, so that concurrent
  // builds never see a half-generated tree.
  const stamp = createHash('sha256')
    .update(readFileSync(fileURLToPath(import.meta.url)))
    .update(JSON.stringify(options));
  hashTree(join(work, 'ours'), stamp);
  hashTree(join(work, 'third_party'), stamp);
  const fingerprint = stamp.digest('hex');
  const finalDir = join(root, 'src', 'gen');
  const stampFile = join(finalDir, '.stamp');
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === fingerprint) {
    rmSync(work, { recursive: true, force: true });
    process.exit(0);
  }
  const out = join(root, 'src', `gen.tmp-${process.pid}`);
  writeFileSync(
    join(work, 'buf.gen.yaml'),
    `version: v2\nplugins:\n  - local: ${plugin}\n    out: ${out}\n    opt:\n${options.map((o) => `      - ${o}`).join('\n')}\n`,
  );
  const buf = join(root, 'node_modules', '.bin', 'buf');
  execFileSync(buf, ['generate', ...paths.flatMap((p) => ['--path', p])], { cwd: work, stdio: 'inherit' });
  zeroCopyBytes(out);
  writeFileSync(join(out, '.stamp'), fingerprint);
  const old = join(root, 'src', `gen.old-${process.pid}`);
  if (existsSync(finalDir)) renameSync(finalDir, old);
  renameSync(out, finalDir);
  rmSync(old, { recursive: true, force: true });
} finally {
  rmSync(work, { recursive: true, force: true });
}

// ts-proto copies every bytes field on decode and every message on serialize.
// Blobs travel in bytes fields, so take views of the buffers grpc-js hands us
// instead (each buffer belongs to one message and is not reused).
function zeroCopyBytes(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      zeroCopyBytes(path);
      continue;
    }
    const text = readFileSync(path, 'utf8');
    const patched = text
      .replaceAll('Buffer.from(reader.bytes())', 'asBuffer(reader.bytes())')
      .replace(/Buffer\.from\((\w+)\.encode\(value\)\.finish\(\)\)/g, 'asBuffer($1.encode(value).finish())');
    if (patched !== text) {
      writeFileSync(
        path,
        `${patched}\nfunction asBuffer(bytes: Uint8Array): Buffer {\n  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);\n}\n`,
      );
    }
  }
}

function hashTree(dir, hash) {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    hash.update(entry.name);
    if (entry.isDirectory()) hashTree(path, hash);
    else hash.update(readFileSync(path));
  }
}
