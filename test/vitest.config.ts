// Two projects: `unit` runs anywhere without privileges; `netns` builds network namespaces,
// needs root, and runs one file at a time in forked processes (namespaces, TAPs and
// captures must not overlap). netns files skip themselves with a visible reason when not root.
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
    ],
  },
});
