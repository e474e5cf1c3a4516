/**
 * Counting for the security tests (issue 11): each attempt is either an input that must be refused (or
 * neutralised) or one that must be accepted; `done()` prints "<area>: tried N, refused correctly N,
 * accepted correctly N, wrong N" and fails the test with the wrong ones listed.
 */
import { expect } from "vitest";

export interface Tally {
  /** An attempt that must be refused: `ok` says it was. */
  refused(ok: boolean, what: string): void;
  /** An attempt that must be accepted (a control): `ok` says it was. */
  accepted(ok: boolean, what: string): void;
  done(): { tried: number; refused: number; accepted: number; wrong: string[] };
}

export function tally(area: string): Tally {
  let refused = 0;
  let accepted = 0;
  const wrong: string[] = [];
  return {
    refused(ok, what) {
      if (ok) refused++;
      else wrong.push(what);
    },
    accepted(ok, what) {
      if (ok) accepted++;
      else wrong.push(what);
    },
    done() {
      const tried = refused + accepted + wrong.length;
      console.log(`[security] ${area}: tried ${tried}, refused correctly ${refused}, accepted correctly ${accepted}, wrong ${wrong.length}`);
      expect(wrong).toEqual([]);
      return { tried, refused, accepted, wrong };
    },
  };
}
