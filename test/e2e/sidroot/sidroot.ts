/**
 * The sid root helpers' old address, kept so that suites written against it keep
 * compiling while they move: they live in test/support/sidroot.ts now.
 */
export * from '../../support/sidroot.js';
