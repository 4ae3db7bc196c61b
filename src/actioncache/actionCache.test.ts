import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import { type Digest, digestKey, digestOf, SHA256 } from '../digest/digest.js';
import { ActionResult } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type Blob, type FindMissingOptions, ForwardingBlobStore, putBuffer } from '../storage/blobStore.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { ActionCache, type ActionKey, actionResultRecords } from './actionCache.js';
import { serializeActionResult } from './encodedResults.js';

/** A CAS from which a test can make blobs vanish without any eviction report (as a file deleted on disk). */
class VanishingStore extends ForwardingBlobStore {
  readonly gone = new Set<string>();
  findMissingCalls = 0;

  override async findMissing(context: RequestContext, digests: readonly Digest[], options?: FindMissingOptions) {
    this.findMissingCalls++;
    const missing = await this.inner.findMissing(context, digests, options);
    return [...missing, ...digests.filter((digest) => this.gone.has(digestKey(digest)))];
  }

  override async get(context: RequestContext, digest: Digest): Promise<Blob | undefined> {
    return this.gone.has(digestKey(digest)) ? undefined : this.inner.get(context, digest);
  }
}

const context = backgroundContext();

async function setUp(nowMs: { value: number }) {
  const cas = new VanishingStore(new MemoryBlobStore());
  const cache = new ActionCache(actionResultRecords(new MemoryBlobStore()), cas, {
    now: () => nowMs.value,
    hotResultTtlMs: 1000,
  });
  const output = Buffer.from('output of the action');
  const outputDigest = digestOf(output);
  await putBuffer(context, cas, outputDigest, output);
  const key: ActionKey = { instanceName: '', digestFunction: SHA256, actionDigest: digestOf('an action') };
  const result: ActionResult = {
    outputFiles: [
      { path: 'out', digest: outputDigest, isExecutable: false, contents: Buffer.alloc(0), nodeProperties: undefined },
    ],
    outputFileSymlinks: [],
    outputSymlinks: [],
    outputDirectories: [],
    outputDirectorySymlinks: [],
    exitCode: 0,
    stdoutRaw: Buffer.alloc(0),
    stdoutDigest: undefined,
    stderrRaw: Buffer.alloc(0),
    stderrDigest: undefined,
    executionMetadata: undefined,
  };
  await cache.put(context, key, result);
  return { cas, cache, key, outputDigest, output };
}

describe('ActionCache hot results', () => {
  it('answers a repeated hit from memory, without checking the CAS again, until the verdict is older than its TTL', async () => {
    const now = { value: 1_000_000 };
    const { cas, cache, key } = await setUp(now);
    assert.ok(await cache.get(context, key));
    const checks = cas.findMissingCalls;
    assert.ok(await cache.get(context, key));
    assert.equal(cas.findMissingCalls, checks, 'the second hit is not checked again');
    now.value += 1000;
    assert.ok(await cache.get(context, key));
    assert.equal(cas.findMissingCalls, checks + 1, 'a verdict at its TTL is checked again');
  });

  it('stops serving a result whose output vanished once the CAS reports a loss, or after the TTL without a report', async () => {
    const now = { value: 1_000_000 };
    const { cas, cache, key, outputDigest } = await setUp(now);
    assert.ok(await cache.get(context, key));
    cas.gone.add(digestKey(outputDigest));
    cache.casLostBlobs();
    assert.equal(await cache.get(context, key), undefined);

    cas.gone.clear();
    assert.ok(await cache.get(context, key));
    cas.gone.add(digestKey(outputDigest));
    now.value += 1000;
    assert.equal(await cache.get(context, key), undefined, 'unreported loss: a miss once the TTL has passed');
  });

  it('serves the newer result at once after UpdateActionResult replaces it', async () => {
    const now = { value: 1_000_000 };
    const { cache, key } = await setUp(now);
    const first = await cache.get(context, key);
    assert.ok(first);
    await cache.put(context, key, { ...first, exitCode: 3 });
    assert.equal((await cache.get(context, key))?.exitCode, 3);
  });

  it('inlines into a copy, leaving the remembered result without contents', async () => {
    const now = { value: 1_000_000 };
    const { cache, key, output } = await setUp(now);
    const inlined = await cache.get(context, key, { inlineOutputFiles: ['out'] });
    assert.deepEqual(inlined?.outputFiles[0]?.contents, output);
    const plain = await cache.get(context, key);
    assert.equal(plain?.outputFiles[0]?.contents.length, 0);
    // What GetActionResult sends: the copy with its contents, the remembered result without.
    assert.deepEqual(
      Buffer.from(ActionResult.decode(serializeActionResult(inlined as ActionResult)).outputFiles[0]?.contents ?? []),
      output,
    );
    assert.equal(ActionResult.decode(serializeActionResult(plain as ActionResult)).outputFiles[0]?.contents.length, 0);
  });

  it('forgets remembered verdicts when an inlined output is found missing', async () => {
    const now = { value: 1_000_000 };
    const { cas, cache, key, outputDigest } = await setUp(now);
    assert.ok(await cache.get(context, key));
    cas.gone.add(digestKey(outputDigest));
    await cache.get(context, key, { inlineOutputFiles: ['out'] });
    assert.equal(await cache.get(context, key), undefined, 'the next lookup checks the CAS and misses');
  });
});
