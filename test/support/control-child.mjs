// A control server in a process of its own, for the memory tests of test/daemon/control-limits.test.ts:
// node --expose-gc control-child.mjs SOCKET. It answers `status` with a status-sized object (as
// the daemon does), `counters` with a counters-sized one, and `rss` with its resident set after
// a full GC. Prints "ready" once listening; exits when stdin closes.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [, , sock, root] = process.argv;
const { ControlServer } = await import(pathToFileURL(join(root, 'dist/src/daemon/control.js')).href);
const status = {
  node: 'n1', mode: 'l3', vni: 1, port: 4789, vtepMac: '0e:00:0a:f4:01:00', vtepIp: '10.244.1.0', podCidr: '10.244.1.0/24',
  underlay: '198.51.100.1', underlayMtu: 1500, podMtu: 1450, uptimeSeconds: 1, pods: 2, peers: 2,
  overlay: { gso: true, gro: true, sendsIp: false }, config: '/etc/flatnet/n1.json',
  producers: { file: { pods: 2, peers: 2 }, control: { pods: 0, peers: 0 } }, reloads: { applied: 0, refused: 0, last: null },
};
const counters = { drops: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`reason_${i}`, i])) };
const srv = await ControlServer.listen(sock, (cmd) => {
  if (cmd === 'status') return { ...status, uptimeSeconds: Math.round(process.uptime()) };
  if (cmd === 'counters') return counters;
  if (cmd === 'rss') {
    globalThis.gc?.();
    globalThis.gc?.();
    return { rss: process.memoryUsage().rss, connections: srv.connections };
  }
  throw new Error(`unknown ${cmd}`);
});
process.stdout.write('ready\n');
process.stdin.on('end', () => { void srv.close().then(() => process.exit(0)); });
process.stdin.resume();
