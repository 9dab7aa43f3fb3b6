// Two projects: `unit` runs anywhere without privileges; `netns` builds network namespaces,
// needs root, and runs one file at a time in forked processes (namespaces, TAPs and
// captures must not overlap). netns files skip themselves with a visible reason when not root.
// `netns-af_xdp` runs the lab-level namespace files (lab, interop, hostile input, MTU, reload,
// trace, the e2e bench's smoke test) a second time with the daemons on the AF_XDP backend
// (FLATNET_IO=af_xdp), in a group of its own (groupOrder) so that it never runs beside the netns
// project: namespace runs never overlap.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('..', import.meta.url));

export default defineConfig({
  test: {
    root,
    projects: [
      {
        test: {
          name: 'unit',
          root,
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.netns.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'netns',
          root,
          include: ['test/**/*.netns.test.ts'],
          pool: 'forks',
          fileParallelism: false,
          maxWorkers: 1,
          sequence: { concurrent: false },
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: 'netns-af_xdp',
          root,
          include: ['test/lab/*.netns.test.ts', 'test/bench/*.netns.test.ts'],
          // sets FLATNET_IO itself, per daemon
          // (and the files that test no I/O path: the kube-proxy rules, the prober, policy/Services)
          exclude: ['test/lab/io-backend.netns.test.ts', 'test/lab/kube-proxy.netns.test.ts', 'test/lab/probe.netns.test.ts', 'test/lab/cluster-objects.netns.test.ts'],
          env: { FLATNET_IO: 'af_xdp' },
          sequence: { concurrent: false, groupOrder: 1 },
          pool: 'forks',
          fileParallelism: false,
          maxWorkers: 1,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
