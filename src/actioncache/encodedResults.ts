/**
 * The protobuf encodings of the action results the action cache keeps in memory
 * (HotResults), so that a hit on a remembered result is sent without being
 * encoded again: encoding it was a good part of a hit's CPU. Held in a WeakMap,
 * not on the result, so a copy (a result with contents inlined) never carries
 * its original's encoding; a kept result must not be changed afterwards.
 */
import { ActionResult } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';

const encodings = new WeakMap<ActionResult, Buffer>();

/** Encodes `result` and keeps the encoding for `serializeActionResult`. */
export function encodeAndKeep(result: ActionResult): Buffer {
  const bytes = ActionResult.encode(result).finish();
  const encoding = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  encodings.set(result, encoding);
  return encoding;
}

/** The wire form of `result`: its kept encoding, or a fresh one. */
export function serializeActionResult(result: ActionResult): Buffer {
  // grpc-js copies the returned bytes into its frame, so a kept encoding can be handed out as it is.
  return encodings.get(result) ?? Buffer.from(ActionResult.encode(result).finish());
}
