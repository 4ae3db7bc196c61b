import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SpillBuffer } from './spillBuffer.js';

let directory: string;
let counter = 0;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'granary-spill-test-'));
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

function buffer(memoryLimitBytes: number, writeBatchBytes?: number): SpillBuffer {
  return new SpillBuffer({
    memoryLimitBytes,
    temporaryPath: () => join(directory, `spill-${counter++}`),
    ...(writeBatchBytes === undefined ? {} : { writeBatchBytes }),
  });
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
}

async function filesLeft(): Promise<string[]> {
  return readdir(directory);
}

describe('SpillBuffer', () => {
  it('keeps content up to the limit in memory and writes no file', async () => {
    const spill = buffer(10);
    await spill.append(Buffer.from('hello '));
    await spill.append(Buffer.from('you!'));
    await spill.finish();
    assert.equal(spill.spilled, false);
    assert.equal(spill.sizeBytes, 10);
    assert.equal(spill.inMemory()?.toString(), 'hello you!');
    assert.equal((await collect(spill.read())).toString(), 'hello you!');
    assert.deepEqual(await filesLeft(), []);
    await spill.dispose();
  });

  it('spills everything to a file once the content passes the limit, and reads it back whole', async () => {
    const spill = buffer(8, 4);
    const parts = ['abc', 'defgh', 'ijk', 'lmnopqrs', 't'];
    for (const part of parts) await spill.append(Buffer.from(part));
    await spill.finish();
    assert.equal(spill.spilled, true);
    assert.equal(spill.inMemory(), undefined);
    assert.equal(spill.sizeBytes, 20);
    assert.equal((await collect(spill.read())).toString(), parts.join(''));
    assert.equal((await filesLeft()).length, 1);
    await spill.dispose();
    assert.deepEqual(await filesLeft(), []);
  });

  it('hands over a file holding the content, which dispose then leaves alone', async () => {
    const spilled = buffer(2);
    await spilled.append(Buffer.from('spilled content'));
    await spilled.finish();
    const spilledPath = await spilled.takeFile();
    await spilled.dispose();
    assert.equal(await readFile(spilledPath, 'utf8'), 'spilled content');

    const small = buffer(1024);
    await small.append(Buffer.from('small'));
    await small.finish();
    const smallPath = await small.takeFile();
    await small.dispose();
    assert.equal(await readFile(smallPath, 'utf8'), 'small');
    await rm(spilledPath);
    await rm(smallPath);
  });

  it('gives empty content when nothing was appended', async () => {
    const spill = buffer(4);
    await spill.finish();
    assert.equal(spill.inMemory()?.length, 0);
    await spill.dispose();
  });

  it('removes its file when disposed before finishing, as after a failed upload', async () => {
    const spill = buffer(1);
    await spill.append(Buffer.from('partial'));
    assert.equal((await filesLeft()).length, 1);
    await spill.dispose();
    await spill.dispose();
    assert.deepEqual(await filesLeft(), []);
  });

  it('refuses to append after finishing and to be read before finishing', async () => {
    const spill = buffer(4);
    assert.throws(() => spill.inMemory(), /before finish/);
    await spill.finish();
    await assert.rejects(spill.append(Buffer.from('late')), /after finish/);
    await spill.dispose();
  });

  it('reports a failure to create the file from the append that spills', async () => {
    const spill = new SpillBuffer({
      memoryLimitBytes: 1,
      temporaryPath: () => join(directory, 'no-such-directory', 'file'),
    });
    await assert.rejects(spill.append(Buffer.from('too big')), { code: 'ENOENT' });
    await spill.dispose();
  });
});
