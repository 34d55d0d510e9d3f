/**
 * Stop sequences on decoded text (OpenAI `stop`): where the earliest one starts, and how much of a text's end
 * must be held back from streaming because it could still grow into one.
 */

/** Index of the earliest occurrence of any stop string in `text`, or -1. */
export function firstStop(text: string, stops: readonly string[]): number {
  let at = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string (0 if none). */
export function heldBackLength(text: string, stops: readonly string[]): number {
  let held = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > held; n--) {
      if (text.endsWith(s.slice(0, n))) {
        held = n;
        break;
      }
    }
  }
  return held;
}
