/**
 * Small waiting and quieting helpers for unit tests: poll for a condition without
 * tuning sleeps to the machine, and hide the console complaints a test provokes.
 */
import assert from 'node:assert/strict';

/** Polls until the condition holds, failing after timeoutMs. */
export async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 1_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Silences console.error while fn runs (for expected complaints, e.g. about bad state files). */
export async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const original = console.error;
  console.error = () => {};
  try {
    return await fn();
  } finally {
    console.error = original;
  }
}
