/**
 * `flatnet ui [--listen 127.0.0.1:8080] [--lab NAME | --socket S... | --etcd ENDPOINTS] [--token T]`:
 * the pod networking visualizer (server.ts), until SIGINT/SIGTERM. Registered by main.ts.
 */

import type { Command } from 'commander';
import { FlatnetError } from '../errors.js';

interface UiFlags { listen: string; lab?: string; socket?: string[]; etcd?: string; prefix: string; token?: string; pollMs: string }

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

export function registerUi(program: Command, write: (s: string) => void): void {
  program
    .command('ui')
    .description('the pod networking visualizer: a live web view of nodes, pods, tunnels, encapsulation, packet paths and pipelines (read-only)')
    .option('--listen <host:port>', 'where to serve the page (loopback unless --token is given)', '127.0.0.1:8080')
    .option('--lab <name>', "a lab's nodes, from its state (/run/flatnet/lab-NAME)")
    .option('-s, --socket <path>', 'a flatnet daemon\'s control socket (repeatable)', collect)
    .option('--etcd <endpoints>', 'etcd endpoints, comma-separated: the subnet leases (kernel nodes, nodes without a socket)')
    .option('--prefix <prefix>', "flatnet's key prefix in etcd", '/flatnet')
    .option('--token <token>', 'required on every request; needed to listen beyond loopback (16+ characters)')
    .option('--poll-ms <ms>', 'how often the nodes are read while someone watches', '1000')
    .action(async (o: UiFlags) => {
      // Loaded here, so that other commands do not pay for the server's modules.
      const { ClusterSource } = await import('./cluster.js');
      const { parseListen, UiServer } = await import('./server.js');
      const { host, port } = parseListen(o.listen);
      const pollMs = Number(o.pollMs);
      if (!Number.isInteger(pollMs) || pollMs < 200 || pollMs > 60_000) throw new FlatnetError('ERR_UI_USAGE', `--poll-ms ${o.pollMs}: 200 to 60000`);
      const etcd = o.etcd?.split(',').map((s) => s.trim()).filter((s) => s !== '');
      const source = new ClusterSource({ lab: o.lab, sockets: o.socket, etcd, prefix: o.prefix });
      const server = new UiServer(source, { host, port, token: o.token ?? null, pollMs });
      const at = await server.listen();
      write(`flatnet ui: ${at.url} (${source.description}; read-only)\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => { server.close().finally(resolve); };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
