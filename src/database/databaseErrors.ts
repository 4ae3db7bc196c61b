/**
 * Which database failures are worth waiting out. A PostgreSQL that restarts, fails
 * over or is briefly unreachable shows up as connection errors (no SQLSTATE, or the
 * 08 class), shutdown and start-up states (57P01-57P03), too many connections, and
 * serialization failures and deadlocks that a retry resolves. Everything else (a
 * constraint violation, a syntax error) is a bug that retrying would only repeat.
 */

/** SQLSTATE codes after which the same statement may succeed once the database is back. */
const TRANSIENT_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '53300', // too_many_connections
  '55P03', // lock_not_available
  '57014', // query_canceled (statement_timeout while the database recovers)
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, in recovery)
  '25P03', // idle_in_transaction_session_timeout
]);

/** Node.js socket errors that mean the server was not (or is no longer) reachable. */
const TRANSIENT_SOCKET_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * Whether an error from the `pg` client means "the database is unavailable right
 * now" rather than "this statement is wrong".
 */
export function isTransientDatabaseError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (TRANSIENT_SOCKET_ERRORS.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code)) return code.startsWith('08') || TRANSIENT_SQLSTATES.has(code);
  }
  // The pg client reports a dropped connection, a pool that could not connect in time,
  // and a client used after its connection failed with plain errors carrying no code.
  return /Connection terminated|connection error|timeout exceeded when trying to connect|Connection ended|not queryable|ECONNREFUSED|ECONNRESET|socket/i.test(
    error.message,
  );
}
