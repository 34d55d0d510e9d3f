/**
 * Plain-text benchmark table for the terminal (scripts/bench.mjs): accuracy per mode beside the PyTorch
 * report's (flagging mismatches on the full set), mean and p90 latency, and the accuracy gains and latency
 * ratios beside the C2C paper's figures (src/demo/paper-reference.mjs).
 */
import { accuracyMatches } from '../src/demo/accuracy-check.mjs';
import { paperComparisonLines } from '../src/demo/paper-reference.mjs';

const LABELS = { receiver: 'receiver alone', sharer: 'sharer alone', 'text-relay': 'text relay', c2c: 'C2C' };
const pct = (x) => (x === undefined || Number.isNaN(x) ? '–' : `${(100 * x).toFixed(1)}%`);
const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : '–');

export function describeDevice(d) {
  const a = d.adapter;
  const adapter = a ? ` on ${[a.vendor, a.architecture, a.description].filter(Boolean).join('/')}${a.isFallbackAdapter ? ' (fallback adapter)' : ''}` : '';
  const sw = a && (a.architecture === 'swiftshader' || a.isFallbackAdapter) ? ' — SwiftShader is a CPU rasterizer: not GPU numbers' : '';
  return `${d.backend}${adapter}, fuser ${d.fuserBackend}, shader-f16 ${d.shaderF16 ? 'yes' : 'no'}, ${d.topology}${d.fallbackReason ? `, fallback: ${d.fallbackReason}` : ''}${sw}`;
}

export function formatTable(run, reference = {}, fullSetSize) {
  const subset = fullSetSize !== undefined && run.items < fullSetSize;
  const rows = [['mode', 'accuracy', 'PyTorch', 'check', 'mean', 'p90']];
  for (const s of run.summaries) {
    const ref = reference[s.mode];
    const check = ref === undefined ? '–' : subset ? 'subset' : accuracyMatches(s.accuracy, ref) ? 'match' : 'MISMATCH';
    rows.push([LABELS[s.mode] ?? s.mode, `${pct(s.accuracy)} (${s.correct}/${s.n})`, pct(ref), check, ms(s.meanMs), ms(s.p90Ms)]);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  const out = [
    `${run.engineKind === 'fake' ? '[FAKE ENGINE — not results] ' : ''}${run.pair}: ${run.items}${subset ? `/${fullSetSize}` : ''} items, greedy, max ${run.maxNewTokens} new tokens${run.warmup ? ', after one untimed warm-up per mode' : ''}`,
    `device: ${describeDevice(run.device)}`,
    line(rows[0]), ...rows.slice(1).map(line),
  ];
  const relay = run.summaries.find((s) => s.mode === 'text-relay' && s.meanHintTokens !== undefined);
  if (relay) {
    out.push(`text relay: the sharer wrote ${relay.meanHintTokens.toFixed(1)} hint tokens on average (max ${relay.maxHintTokens}`
      + `${run.relayMaxTokens ? `, cap ${run.relayMaxTokens}` : ''}) before the receiver started`);
  }
  out.push(...paperComparisonLines(run));
  if (subset) out.push(`note: ${run.items} of ${fullSetSize} items — PyTorch accuracies are over the full set, so they are not compared.`);
  if (run.consoleErrors?.length) out.push(`console errors: ${run.consoleErrors.length} (first: ${run.consoleErrors[0]})`);
  return out.join('\n') + '\n';
}
