/**
 * The etcd client (npm `etcd3`, over grpc-js), set up for a node agent: short call deadlines,
 * a per-endpoint circuit breaker that probes again after 1 s, three tries over the endpoints per
 * call, and watch streams that reconnect with a capped exponential backoff (100 ms to 2 s) and
 * resume from the last revision they saw. Endpoints are `http://ADDR:PORT` or `unix:///PATH`.
 */

import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import { Etcd3, isRecoverableError, type IKeyValue } from 'etcd3';
import type { RawRecord } from './records.js';

export { DEFAULT_PREFIX, endpointSchema, prefixSchema } from './schema.js';


export interface EtcdOptions {
  /** Deadline of one unary call, ms (default 3000). */
  readonly callTimeoutMs?: number;
}

export function connectEtcd(endpoints: readonly string[], opts: EtcdOptions = {}): Etcd3 {
  const deadline = opts.callTimeoutMs ?? 3000;
  return new Etcd3({
    hosts: [...endpoints],
    dialTimeout: deadline,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + deadline }),
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
      global: retry(handleWhen(isRecoverableError), { maxAttempts: Math.max(2, endpoints.length) }),
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }).next(),
    },
  });
}

/** A key-value as the rest of flatnet sees it. */
export function rawOf(kv: IKeyValue): RawRecord {
  return { key: kv.key.toString(), value: kv.value.toString(), createRevision: Number(kv.create_revision), modRevision: Number(kv.mod_revision) };
}

/** The message of anything thrown by the client, one line. */
export function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 300);
}
