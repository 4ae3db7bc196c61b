/**
 * Names and paths inside REAPI directory trees: the canonical order of entries,
 * which names are safe to create on a host, and how a tree path splits into
 * components. Shared by everything that builds, reads or lays out trees.
 */
import { invalidArgument } from '../util/status.js';

/** REAPI orders entries by name as UTF-8 bytes, which is code point order (not UTF-16 order). */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Longest name of one directory entry that Linux file systems create (NAME_MAX), in bytes. */
export const MAXIMUM_NAME_BYTES = 255;

/**
 * Whether a Directory entry name can be created on a host without leaving its
 * parent; a longer name than the host takes would fail only when staged.
 */
export function isSafeName(name: string): boolean {
  return (
    name !== '' &&
    name !== '.' &&
    name !== '..' &&
    !name.includes('/') &&
    !name.includes('\0') &&
    Buffer.byteLength(name, 'utf8') <= MAXIMUM_NAME_BYTES
  );
}

/**
 * Splits a tree path into components. Leading and repeated slashes and "." are
 * ignored, so "/a/./b" is ["a", "b"]; ".." is refused, since a tree path can
 * never leave the root.
 */
export function splitTreePath(path: string): string[] {
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw invalidArgument(`path "${path}" must not contain ".."`);
  return parts;
}

/** `name` below the tree path `parent` ('' is the root). */
export function childPath(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}
