/**
 * `flatnet lab up|test|down|demo`: a lab of namespaced nodes (src/lab). `demo` is what the
 * README's `npm run lab` runs: up, test, and down, which runs also after a failure or Ctrl-C.
 */

import { FlatnetError } from '../errors.js';
import { labDown, labUp } from '../lab/lab.js';
import { labTest, renderReport, type LabTestOptions } from '../lab/runner.js';
import { kindLabel, loadLab, type LabOptions, type LabState } from '../lab/topology.js';

export type Write = (s: string) => void;

const say = (line: string): void => { process.stderr.write(`${line}\n`); };

/** The nodes of a lab that is up, one line each. */
export function describeLab(s: LabState): string {
  const rows = s.nodes.map((n) => {
    const d = s.daemons[n.name];
    return [
      n.name, kindLabel(n), n.ns, `${n.underlayIp}/24`, n.podCidr, n.vtepMac,
      n.pods.map((p) => `${p.name}=${p.ip}`).join(' '),
      n.kind === 'flatnet' ? `pid ${d?.pid ?? '?'}, ${n.socket}` : `${n.vxlanDev} + ${n.bridge}`,
    ];
  });
  const head = ['NODE', 'KIND', 'NAMESPACE', 'UNDERLAY', 'POD CIDR', 'VTEP MAC', 'PODS', 'DATA PLANE'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

export async function runLabUp(o: Partial<LabOptions>, write: Write): Promise<LabState> {
  const s = await labUp(o, say);
  write(describeLab(s));
  write(`\nlab ${s.name} is up (state, configs and logs in ${s.dir}); next: flatnet lab test --name ${s.name}\n`);
  return s;
}

export async function runLabTest(name: string, o: LabTestOptions, write: Write): Promise<boolean> {
  const s = loadLab(name);
  const rep = await labTest(s, { ...o, progress: say });
  write(renderReport(rep));
  return rep.ok;
}

export async function runLabDown(name: string): Promise<void> {
  await labDown(name, say);
}

/** up + test + down; down always runs (also on a failure, SIGINT or SIGTERM). Returns the test's verdict. */
export async function runLabDemo(o: Partial<LabOptions>, t: LabTestOptions, write: Write): Promise<boolean> {
  const name = o.name ?? 'lab';
  let downing: Promise<void> | null = null;
  const down = (): Promise<void> => (downing ??= labDown(name, say).then(() => undefined));
  const onSignal = (sig: NodeJS.Signals): void => {
    say(`${sig}: removing lab ${name}`);
    void down().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // A lab of that name made by someone else is not ours to remove.
  let ours = true;
  try {
    try {
      await runLabUp(o, write);
    } catch (e) {
      if (e instanceof FlatnetError && e.code === 'ERR_LAB_EXISTS') ours = false;
      throw e;
    }
    write('\n');
    return await runLabTest(name, t, write);
  } finally {
    if (ours) await down();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
