import { describe, expect, it } from 'vitest';
import { gridDiff, parseGrid, parseGrids, renderGrid, type Grid } from '../../src/lab/probe.js';

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

  it('read an --expect file of several grids by their PROTO/PORT headings, as a run prints them', () => {
    const udp = { ...g({ 'x/a': '.X.', 'x/b': '...', 'y/a': '...' }), proto: 'udp' as const, port: 81 };
    const text = `${renderGrid(got)}\n\n${renderGrid(udp)}\n`;
    const grids = parseGrids(text, [{ proto: 'tcp', port: 80 }, { proto: 'udp', port: 81 }]);
    expect([...grids.keys()]).toEqual(['TCP/80', 'UDP/81']);
    expect([grids.get('TCP/80'), grids.get('UDP/81')]).toEqual([got, udp]);
    // One grid without a heading is the grid of the one port and protocol probed.
    expect(parseGrids(text.split('\n').slice(1, 5).join('\n'), [{ proto: 'tcp', port: 80 }]).get('TCP/80')).toEqual(got);
  });

  it.each([
    ['no headings but two grids probed', '     x/a\nx/a  .\n', 'give each expected grid a heading'],
    ['a grid before the first heading', '     x/a\nx/a  .\nTCP/80\n     x/a\nx/a  .\n', 'line 1: a grid before the first'],
    ['the same heading twice', 'TCP/80\n     x/a\nx/a  .\nTCP/80\n     x/a\nx/a  X\n', 'line 4: a second grid for TCP/80'],
    ['a bad grid under a heading', 'UDP/81\n     x/a\nx/a  ?\n', 'UDP/81 (line 1)'],
  ])('refuse an --expect file with %s', (_what, text, msg) => {
    expect(() => parseGrids(text, [{ proto: 'tcp', port: 80 }, { proto: 'udp', port: 81 }])).toThrow(expect.objectContaining({ code: 'ERR_PROBE_GRID', message: expect.stringContaining(msg) }));
  });
});
