/**
 * Creating ports inside a network namespace from a process that lives in another one.
 *
 * withNetns moves the calling thread into the namespace (setns(2), through the addon), runs a
 * synchronous function, and moves it back, also when the function throws. Sockets and TAP
 * devices created inside stay in that namespace for their whole life, wherever the thread is
 * afterwards; so `withNetns('ns1', () => TapPort.open('tap0'))` makes tap0 in ns1, and the
 * port's I/O then works from anywhere. Only the calling thread moves (Node's other threads do
 * not), which is why `fn` must be synchronous: anything it starts asynchronously would run
 * after the thread came back.
 */

import { FlatnetError } from '../errors.js';
import { control, loadNative } from './native.js';

/** The path of a namespace given by name (`ip netns add NAME`) or as a path. */
export function netnsPath(nameOrPath: string): string {
  if (nameOrPath.includes('/')) return nameOrPath;
  if (!/^[A-Za-z0-9_.-]+$/.test(nameOrPath) || nameOrPath === '.' || nameOrPath === '..') {
    throw new FlatnetError('ERR_IO_BAD_NETNS', `not a namespace name: ${JSON.stringify(nameOrPath)}`);
  }
  return `/var/run/netns/${nameOrPath}`;
}

/** withNetns runs `fn` with the calling thread inside namespace `ns` and returns its result. */
export function withNetns<T>(ns: string, fn: () => T): T {
  const path = netnsPath(ns);
  const n = loadNative();
  const saved = control(path, () => n.netnsEnter(path));
  let result: T;
  try {
    result = fn();
  } finally {
    control('restoring the original namespace', () => n.netnsRestore(saved));
  }
  if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
    throw new FlatnetError('ERR_IO_NETNS_ASYNC', 'withNetns: the function must be synchronous (it returned a promise)');
  }
  return result;
}
