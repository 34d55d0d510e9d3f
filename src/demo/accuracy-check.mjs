/**
 * Whether a measured accuracy equals the PyTorch report's. The report stores accuracies rounded to 4 decimals
 * (train/world.py `tally`), so they match when the measured value rounds to the same: |measured − reported| ≤ 5e-5.
 * One item more or less moves the accuracy by 1/n, far above that for any eval set under 20,000 items.
 * Plain JS: the terminal table (bench/format.mjs) runs it in Node without a build; the demo's report imports it too.
 */
export const REPORT_ROUNDING = 5e-5;

export function accuracyMatches(measured, reported) {
  return Math.abs(measured - reported) <= REPORT_ROUNDING + 1e-12;
}
