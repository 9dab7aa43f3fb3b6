/**
 * A registry of typed commands: each has a name, a zod schema for its arguments and a handler
 * that receives the parsed arguments and a context (the daemon's API). It knows nothing of
 * sockets: the control socket (control.ts) serves it today, an HTTP front end can serve the
 * same registry later, and a client can check arguments with the same schemas before sending.
 *
 *   const registry = new CommandRegistry([command({ name: 'echo', summary: '...', mutates: false,
 *     args: z.object({ text: z.string() }).strict(), run: (a, ctx) => a.text })]);
 *   await registry.dispatch('echo', { text: 'hi' }, ctx);
 *
 * Errors: an unknown name is ERR_CONTROL_UNKNOWN_COMMAND; arguments that do not match the
 * schema are ERR_CONTROL_BAD_REQUEST, a ConfigError whose `field` is the path ("pod.ip"); a
 * handler's own errors pass through unchanged, with their code.
 */

import type { z } from 'zod';
import { FlatnetError } from '../errors.js';
import { schemaError } from './validate.js';

export interface Command<A extends z.ZodType, C> {
  readonly name: string;
  /** One line, for help and an HTTP index. */
  readonly summary: string;
  /** Whether it changes state (an HTTP front end serves the others on GET). */
  readonly mutates: boolean;
  /** The arguments: the request without `id` and `cmd`. */
  readonly args: A;
  /** run: a method, so that a Command<ZodObject<...>> is also an AnyCommand (parameters are bivariant). */
  run(args: z.output<A>, ctx: C): unknown;
}

/** A command of any argument type, as the registry holds it. */
export type AnyCommand<C> = Command<z.ZodType, C>;

/** command: identity, so that `run`'s arguments are inferred from `args`. */
export function command<A extends z.ZodType, C>(c: Command<A, C>): Command<A, C> {
  return c;
}

export class CommandRegistry<C> {
  private readonly byName = new Map<string, AnyCommand<C>>();

  constructor(commands: readonly AnyCommand<C>[]) {
    for (const c of commands) {
      if (this.byName.has(c.name)) throw new FlatnetError('ERR_CONTROL_DUPLICATE_COMMAND', `two commands named ${c.name}`);
      this.byName.set(c.name, c);
    }
  }

  get names(): string[] {
    return [...this.byName.keys()];
  }

  get(name: string): AnyCommand<C> | undefined {
    return this.byName.get(name);
  }

  /** parse checks `args` against command `name`'s schema and returns them parsed (the client uses it too). */
  parse(name: string, args: unknown): unknown {
    const c = this.byName.get(name);
    if (c === undefined) throw new FlatnetError('ERR_CONTROL_UNKNOWN_COMMAND', `unknown command ${JSON.stringify(name)}; one of ${this.names.join(', ')}`);
    const r = c.args.safeParse(args);
    if (!r.success) throw schemaError('ERR_CONTROL_BAD_REQUEST', r.error);
    return r.data;
  }

  /** dispatch parses the arguments and runs the handler with `ctx`. */
  async dispatch(name: string, args: unknown, ctx: C): Promise<unknown> {
    const parsed = this.parse(name, args);
    return await this.byName.get(name)!.run(parsed, ctx);
  }
}
