/**
 * Negative errno values returned by ports on the data path (Linux numbering, from
 * `os.constants.errno`), kept apart from native.ts so ports without the addon can use them.
 */

import { constants } from 'node:os';

const e = constants.errno;

export const Errno = {
  EAGAIN: -e.EAGAIN,
  EBADF: -e.EBADF,
  EINVAL: -e.EINVAL,
  ENOSPC: -e.ENOSPC,
  EMSGSIZE: -e.EMSGSIZE,
  ENOBUFS: -e.ENOBUFS,
  EOPNOTSUPP: -e.EOPNOTSUPP,
  EPIPE: -e.EPIPE,
  EIO: -e.EIO,
} as const;
