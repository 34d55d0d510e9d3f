/**
 * The C2C paper's reference figures, printed beside our measurements by the demo's benchmark panel and
 * report (src/demo/report.ts) and by the terminal table of `npm run bench` (bench/format.mjs). Plain JS so
 * that Node runs it without a build. Source: Fu et al. 2025, "Cache-to-Cache", arXiv 2510.03215 (abstract;
 * Table 3: latency breakdown on MMLU-Redux, Qwen2.5-0.5B-Instruct sharer → Qwen3-0.6B receiver, one A100,
 * batch 1). Our numbers come from other models on another device: the lines compare, they do not judge.
 */
export const PAPER = {
  source: 'Fu et al. 2025, arXiv 2510.03215',
  device: 'one NVIDIA A100, batch 1',
  pair: 'Qwen2.5-0.5B-Instruct → Qwen3-0.6B',
  accuracyGainOverSingle: '+8.5–10.5%',
  accuracyGainOverRelay: '+3–5%',
  speedupOverRelay: 'about 2×',
  /** Table 3 (MMLU-Redux): totals per item and the fusion step, ms. */
  tableMs: { receiver: 308, c2c: 445, textRelay: 1596, fusion: 90, receiverPrefill: 27 },
};

const t = PAPER.tableMs;
const thousands = (n) => n.toLocaleString('en-US');

/** Short device name for a benchmark run (`wasm`, `webgpu on google/swiftshader`, …). */
export function runDevice(device) {
  const a = device.adapter;
  const name = a ? [a.vendor, a.architecture, a.description].filter(Boolean).join('/') : '';
  return name ? `${device.backend} on ${name}` : device.backend;
}

/**
 * The lines under a results table: measured accuracy gains and latency ratios with the device used, each
 * beside the paper's figure. `run` has `summaries` (mode, accuracy), `c2cSpeedupOverRelay`, `c2cOverReceiver`
 * and `device`.
 */
export function paperComparisonLines(run) {
  const here = `here on ${runDevice(run.device)}`;
  const acc = (mode) => run.summaries.find((s) => s.mode === mode)?.accuracy;
  const points = (x) => `${x >= 0 ? '+' : '−'}${Math.abs(100 * x).toFixed(1)} points`;
  const out = [];
  const c2c = acc('c2c');
  const receiver = acc('receiver');
  const relay = acc('text-relay');
  if (c2c !== undefined && receiver !== undefined) {
    out.push(`C2C accuracy vs receiver alone: ${points(c2c - receiver)} ${here} `
      + `(paper: ${PAPER.accuracyGainOverSingle} over single models)`);
  }
  if (c2c !== undefined && relay !== undefined) {
    out.push(`C2C accuracy vs text relay: ${points(c2c - relay)} ${here} (paper: ${PAPER.accuracyGainOverRelay})`);
  }
  if (run.c2cSpeedupOverRelay !== null && run.c2cSpeedupOverRelay !== undefined) {
    out.push(`C2C speedup over text relay: ${run.c2cSpeedupOverRelay.toFixed(2)}× ${here} `
      + `(paper, ${PAPER.device}: ${PAPER.speedupOverRelay}; Table 3: ${thousands(t.textRelay)} → ${t.c2c} ms)`);
  }
  if (run.c2cOverReceiver !== null && run.c2cOverReceiver !== undefined) {
    out.push(`C2C latency / receiver alone: ${run.c2cOverReceiver.toFixed(2)}× ${here} `
      + `(paper Table 3: ${t.c2c} / ${t.receiver} ms = ${(t.c2c / t.receiver).toFixed(2)}×; `
      + `fusion ${t.fusion} ms vs receiver prefill ${t.receiverPrefill} ms)`);
  }
  return out;
}
