/**
 * The storage server of the benchmark when it runs in its own process:
 * `node dist-test/bench/serverProcess.js DATA_DIRECTORY CAS_BYTES [disk|memory]`
 * starts startStorageServer on 127.0.0.1:0 (see benchServerConfig), prints
 * "serving on HOST:PORT", and shuts down cleanly on SIGTERM (so that --cpu-prof
 * profiles get written).
 */
import { startStorageServer } from '../src/server/storageServer.js';
import { benchServerConfig } from './server.js';

const [directory, casBytes, backend = 'disk'] = process.argv.slice(2);
if (!directory || !casBytes || (backend !== 'disk' && backend !== 'memory')) {
  console.error('usage: serverProcess.js DATA_DIRECTORY CAS_BYTES [disk|memory]');
  process.exit(2);
}
const server = await startStorageServer(benchServerConfig(directory, Number(casBytes), backend));
console.log(`serving on ${server.address}`);
let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  server.close().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
