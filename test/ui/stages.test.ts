// Every drop reason of the pipeline is placed on exactly one stage of the pipeline view.
import { describe, expect, it } from 'vitest';
import { DROP_NAMES } from '../../src/pipeline/drop.js';
import { placedReasons, stageOfDrop } from '../../src/ui/stages.js';

describe('drop reason -> stage', () => {
  it('places every reason but none exactly once', () => {
    expect([...placedReasons()].sort()).toEqual(DROP_NAMES.slice(1).sort());
  });
  it.each([['spoof_src_ip', 'ingress'], ['vxlan_no_i_flag', 'ingress'], ['no_route', 'route'], ['mtu_exceeded', 'egress'], ['policy_denied_ingress', 'policy-ingress'], ['service_no_endpoints', 'service-nat'], ['tx_busy', 'transmit']])('%s is decided in %s', (r, s) => {
    expect(stageOfDrop(r)).toBe(s);
  });
});
