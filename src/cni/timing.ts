/**
 * Where an invocation's time goes, for the CNI bench: `FLATNET_CNI_TRACE=1` makes the plugin
 * print one stderr line of marks, each the milliseconds since the process started
 * (performance.now()'s origin), e.g. `flatnet-cni timing: main=41.2 lease=44.0 veth=49.8
 * attach=52.1 done=52.4`: Node's start and module loading end at `main`.
 */

const marks: [string, number][] = [];
/** Read once: the daemon runs the plugin's code too (cni-exec) and must not collect marks forever. */
const tracing = process.env['FLATNET_CNI_TRACE'] === '1';

export function mark(label: string): void {
  if (tracing) marks.push([label, performance.now()]);
}

export function timingLine(): string {
  return `flatnet-cni timing: ${marks.map(([l, t]) => `${l}=${t.toFixed(1)}`).join(' ')}`;
}
