/**
 * TraceRecorder: where the stages write what they looked at and matched while a trace runs
 * (FrameContext.trace). On the data path the context's recorder is null and every hook in a
 * stage is one null check.
 */

import type { StageName, TraceMatch, TraceStep } from './trace.js';

export class TraceRecorder {
  readonly steps: TraceStep[] = [];
  readonly notes: string[] = [];
  private stage: StageName = 'ingress';
  private looked = '';
  private matched: TraceMatch[] = [];

  /** begin opens the step of `stage` (the runner calls it before the stage decides). */
  begin(stage: StageName): void {
    this.stage = stage;
    this.looked = '';
    this.matched = [];
  }

  /** look records what the stage read; a second call appends. */
  look(text: string): void {
    this.looked = this.looked === '' ? text : `${this.looked}; ${text}`;
  }

  /** match records an entry the stage matched (or checked and found wanting). */
  match(what: string, detail: string): void {
    this.matched.push({ what, detail });
  }

  /** end closes the step with the stage's verdict. */
  end(verdict: string): void {
    this.steps.push({ stage: this.stage, looked: this.looked, matched: this.matched, verdict });
  }

  /** note adds something the trace cannot decide (rate limits, transmit-time outcomes). */
  note(text: string): void {
    if (!this.notes.includes(text)) this.notes.push(text);
  }
}
