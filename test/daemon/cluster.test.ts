import { describe, expect, it } from 'vitest';
import { Cidr } from '../../src/fib/cidr.js';
import { FakeClock } from '../../src/fib/clock.js';
import { ClusterTables } from '../../src/daemon/cluster.js';
import { Framing, Switch, SwitchMode } from '../../src/pipeline/switch.js';
import { ip, mac, tcp } from '../support/pod-frames.js';
import { testPort } from '../support/test-port.js';

const VTEP_MAC = mac('0e:00:0a:f4:01:00');
const A = { ip: ip('10.244.1.2'), mac: mac('02:00:0a:f4:01:02') }, B = { ip: ip('10.244.1.3'), mac: mac('02:00:0a:f4:01:03') };

function setup(): { sw: Switch; a: ReturnType<typeof testPort>; b: ReturnType<typeof testPort>; t: ClusterTables } {
  const sw = new Switch({
    mode: SwitchMode.L3, vni: 1, vtepMac: VTEP_MAC, vtepIp: ip('10.244.1.0'), podCidr: Cidr.parse('10.244.1.0/24'),
    clusterCidr: Cidr.parse('10.244.0.0/16'), gatewayIp: ip('10.244.1.1'), underlayIp: ip('198.51.100.1'), port: 4789,
    encap: { localUnderlayMac: mac('02:00:c6:33:64:01'), nextHopMac: mac('02:00:c6:33:64:fe'), ttl: 64, df: 'unset', udpChecksum: false, srcPortRange: [49152, 65535] },
    clock: new FakeClock(1000),
  });
  const a = testPort('a'), b = testPort('b');
  sw.attachPod(a, A.ip, A.mac, 'a');
  sw.attachPod(b, B.ip, B.mac, 'b');
  sw.attachOverlay(testPort('ov'), Framing.ETHERNET, 'ov');
  const t = new ClusterTables(sw, { node: 'n1', nodeIps: [ip('10.244.1.1')], gateway: ip('10.244.1.1') });
  return { sw, a, b, t };
}
const compiled = (t: ClusterTables): Promise<void> => new Promise((r) => { t.onCompiled = () => r(); });
const syn = (to: number, dport = 80): Buffer => tcp({ srcMac: A.mac, dstMac: VTEP_MAC, src: A.ip, dst: to, dport, flags: 0x02 });
const pod = (name: string, addr: string, app: string) => ({ metadata: { name, namespace: 'shop', labels: { app } }, status: { podIP: addr } });

describe('cluster objects in the data plane', () => {
  it('policies and services from the watches are compiled together, installed, shown, and taken out when they go', async () => {
    const { sw, a, b, t } = setup();
    const send = (f: Buffer): number => { a.inject(f); sw.pump(); return b.take().length; };
    expect(send(syn(B.ip))).toBe(1);
    // Objects arrive kind by kind (as the watches deliver them): one compile for the burst.
    const done = compiled(t);
    t.update('Namespace', [{ metadata: { name: 'shop' } }]);
    t.update('Pod', [pod('a', '10.244.1.2', 'client'), pod('b', '10.244.1.3', 'web')]);
    t.update('NetworkPolicy', [{ metadata: { name: 'web-80', namespace: 'shop' }, spec: { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ ports: [{ port: 80 }] }] } }]);
    t.update('Service', [{ metadata: { name: 'web', namespace: 'shop' }, spec: { clusterIP: '10.96.0.10', selector: { app: 'web' }, ports: [{ port: 8080, targetPort: 80 }] } }]);
    await done;
    expect(t.status().compiles).toBe(1);
    expect(send(syn(B.ip, 81))).toBe(0);
    expect(send(syn(ip('10.96.0.10'), 8080))).toBe(1);
    expect(sw.stats.dropsByName()).toEqual({ policy_denied_ingress: 1 });
    expect(t.policyRows().map((r) => [r.name, r.selects, r.allowed, r.denied])).toEqual([['web-80', ['shop/b'], 1, 1]]);
    expect(t.serviceRows().map((r) => [r.frontend, r.backends.map((x) => `${x.address} ${x.hits}`)])).toEqual([['10.96.0.10:8080', ['10.244.1.3:80 1']]]);
    expect(t.conntrackView().entries.map((e) => `${e.original.dst}:${e.original.dport} -> ${e.reply.src}:${e.reply.sport}`)).toEqual(['10.96.0.10:8080 -> 10.244.1.3:80']);
    const s = t.status();
    expect([s.policies, s.frontends, s.objects.Pod, s.lastChangeToInstalledMs !== null]).toEqual([1, 1, 2, true]);
    // The policy goes: the stage goes with it, and port 81 is open again.
    const gone = compiled(t);
    t.update('NetworkPolicy', []);
    await gone;
    expect(send(syn(B.ip, 81))).toBe(1);
    expect(t.policyRows()).toEqual([]);
    t.close();
  });

  it('objects it cannot use are reported once, the rest applies', async () => {
    const { t } = setup();
    const done = compiled(t);
    t.update('Service', [{ metadata: { name: 'odd', namespace: 'shop' }, spec: { clusterIP: 'None', ports: [{ port: 80 }] } }, { metadata: { name: 'ok', namespace: 'shop' }, spec: { clusterIP: '10.96.0.11', ports: [{ port: 80 }] } }]);
    await done;
    expect(t.status().problems).toEqual(['service shop/odd: spec.clusterIP: headless: nothing to balance']);
    expect(t.serviceRows().map((r) => [r.frontend, r.empty])).toEqual([['10.96.0.11:80', 'no-endpoints']]);
    t.close();
  });
});
