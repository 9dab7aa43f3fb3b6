import { describe, expect, it } from 'vitest';
import { gridDiff, parseGrid, renderGrid, type Grid } from '../../src/lab/probe.js';

const g = (rows: Record<string, string>): Grid => {
  const pods = Object.keys(rows);
  return { proto: 'tcp', port: 80, pods, reach: Object.fromEntries(pods.map((f) => [f, Object.fromEntries(pods.map((t, j) => [t, rows[f]![j] === '.']))])) };
};

describe('probe grids', () => {
  const got = g({ 'x/a': '..X', 'x/b': '...', 'y/a': 'X..' });
  it('render a header of destinations and a row per source, parse back the same grid', () => {
    const text = renderGrid(got);
    expect(text.split('\n')).toEqual([
      'TCP/80 (. reachable, X blocked)',
      '     x/a  x/b  y/a',
      'x/a  .    .    X',
      'x/b  .    .    .',
      'y/a  X    .    .',
    ]);
    expect(parseGrid(text, 'tcp', 80)).toEqual(got);
  });

  it('mark the cells that differ from the expected grid, and list them', () => {
    const want = g({ 'x/a': '...', 'x/b': '...', 'y/a': 'X.X' });
    expect(renderGrid(got, want).split('\n').slice(2)).toEqual(['x/a  .    .    !', 'x/b  .    .    .', 'y/a  X    .    !']);
    expect(gridDiff(got, want)).toEqual(['x/a -> y/a: expected ., got X', 'y/a -> y/a: expected X, got .']);
  });

  it('refuse a grid that is not one, saying which line', () => {
    expect(() => parseGrid('x/a x/b\nx/a . ?\n', 'tcp', 80)).toThrow(expect.objectContaining({ code: 'ERR_PROBE_GRID', message: expect.stringContaining('line 2') }));
    expect(() => parseGrid('x/a\n', 'tcp', 80)).toThrow(expect.objectContaining({ code: 'ERR_PROBE_GRID' }));
  });
});
