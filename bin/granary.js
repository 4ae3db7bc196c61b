#!/usr/bin/env node
// Launcher for the compiled CLI (npm run build produces dist/).
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
