/**
 * `flatnet vtep --config FILE [--keep]`: run one node's VTEP in the current network namespace
 * until SIGTERM or SIGINT (SIGHUP reloads the config file); see src/daemon/lifecycle.ts.
 */

export { runVtep } from '../daemon/lifecycle.js';
