/**
 * The control section's schemas, apart from the etcd client so that the config validation
 * (and the CNI plugin, which shares it) does not load grpc.
 */

import { z } from 'zod';

export const endpointSchema = z.string().regex(/^(http:\/\/[A-Za-z0-9.-]+:\d{1,5}|unix:\/\/\/\S+)$/, 'an etcd endpoint: http://ADDRESS:PORT or unix:///PATH');

export const DEFAULT_PREFIX = '/flatnet';
/** A prefix: starts with "/", no trailing "/", no empty segment. */
export const prefixSchema = z.string().regex(/^(\/[A-Za-z0-9_.-]+)+$/, 'a key prefix such as /flatnet: "/"-separated segments of letters, digits, "_", "." and "-"');
