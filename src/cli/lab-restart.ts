/** `flatnet lab restart NODE [--name LAB]`: start a node's flatnet daemon again (src/lab/restart.ts). */

import type { Command } from 'commander';
import { labRestart } from '../lab/restart.js';

export function registerLabRestart(lab: Command, nameOpt: (c: Command) => Command, write: (s: string) => void): void {
  nameOpt(lab.command('restart').argument('<node>', 'the flatnet node (n1, n2, ...)')
    .description("stop the node's flatnet daemon if it runs, start it again, record its pid (after a crash or a new build)"))
    .action(async (node: string, o: { name: string }) => {
      const r = await labRestart(o.name, node, (l) => process.stderr.write(`${l}\n`));
      write(`${r.node}: ${r.stoppedPid === null ? 'no daemon was running' : `stopped pid ${r.stoppedPid}`}; now pid ${r.pid}\n`);
    });
}
