/**
 * The side-by-side answer columns (receiver alone, text relay with the sharer's hint, C2C, optionally the
 * sharer alone). Each streams tokens as they arrive and, when done, shows a timing bar and tokens/s, and — when
 * the question is an eval item — whether the answer is right.
 */
import type { GenerationMode, GenerationResult, TokenEvent } from '../types';
import { fmtMs, h } from './dom';
import { MODE_COLORS, MODE_LABELS } from './stages';
import { renderTimingBar } from './timing-bar';
import { scoreAnswer, type EvalItem } from './eval-set';

const BLURB: Record<GenerationMode, string> = {
  receiver: 'The receiver answers on its own.',
  'text-relay': 'The sharer first writes a hint in text; the receiver reads it.',
  c2c: "The sharer's KV cache is projected and fused into the receiver's cache.",
  sharer: 'The sharer answers on its own.',
};

interface Column {
  root: HTMLElement;
  hint: HTMLElement;
  answer: HTMLElement;
  verdict: HTMLElement;
  meta: HTMLElement;
  timing: HTMLElement;
  result?: GenerationResult;
}

export class AnswerColumns {
  private cols = new Map<GenerationMode, Column>();

  constructor(private container: HTMLElement) {}

  private expected: EvalItem | null = null;

  /**
   * Rebuilds the columns for the given modes (empty answers). `expected`: the eval item whose prompt is being
   * asked, if any; each finished answer is then marked right or wrong by the report's own rule (scoreAnswer).
   */
  reset(modes: GenerationMode[], expected: EvalItem | null = null): void {
    this.expected = expected;
    this.container.replaceChildren();
    this.cols.clear();
    for (const mode of modes) {
      const hint = h('div', { class: 'hint', hidden: mode !== 'text-relay' },
        h('span', { class: 'hint-label' }, "Sharer's hint: "), h('span', { class: 'hint-text' }));
      const answer = h('output', { class: 'answer', 'aria-live': 'polite', 'data-testid': `answer-${mode}` });
      const verdict = h('p', { class: 'verdict', 'data-testid': `verdict-${mode}`, hidden: true });
      const meta = h('p', { class: 'meta' }, 'waiting…');
      const timing = h('div', { class: 'timing', 'data-testid': `timing-${mode}` });
      const root = h('article', { class: 'col', 'data-mode': mode, style: `--accent:${MODE_COLORS[mode]}` },
        h('h3', {}, MODE_LABELS[mode]), h('p', { class: 'blurb' }, BLURB[mode]), hint, answer, verdict, meta, timing);
      this.container.append(root);
      this.cols.set(mode, { root, hint, answer, verdict, meta, timing });
    }
  }

  start(mode: GenerationMode): void {
    const c = this.cols.get(mode);
    if (!c) return;
    c.root.classList.add('running');
    c.meta.textContent = 'running…';
  }

  token(e: TokenEvent): void {
    const c = this.cols.get(e.mode);
    if (!c) return;
    if (e.mode === 'text-relay' && e.source === 'sharer') c.hint.querySelector('.hint-text')!.append(e.text);
    else c.answer.append(e.text);
  }

  done(result: GenerationResult): void {
    const c = this.cols.get(result.mode);
    if (!c) return;
    c.result = result;
    c.root.classList.remove('running');
    c.root.classList.add('done');
    // The final text replaces the streamed pieces (identical unless a multi-byte character was split).
    c.answer.textContent = result.text;
    if (result.hint) c.hint.querySelector('.hint-text')!.textContent = result.hint.text;
    if (this.expected) {
      const right = scoreAnswer(result.text, this.expected);
      c.verdict.hidden = false;
      c.verdict.dataset.verdict = right ? 'right' : 'wrong';
      c.verdict.textContent = right ? `✓ right (expected ${this.expected.answer})` : `✗ wrong (expected ${this.expected.answer})`;
    }
    const t = result.timing;
    c.meta.textContent = `${result.tokenIds.length} tokens · ${t.decodeTokensPerS.toFixed(1)} tok/s · TTFT ${fmtMs(t.ttftMs)} · total ${fmtMs(t.totalMs)} · ${result.finishReason}`;
    this.redrawBars();
  }

  fail(mode: GenerationMode, message: string): void {
    const c = this.cols.get(mode);
    if (!c) return;
    c.root.classList.remove('running');
    c.root.classList.add('failed');
    c.meta.textContent = `error: ${message}`;
  }

  /** All finished columns share one time scale: the slowest total. */
  private redrawBars(): void {
    const done = [...this.cols.values()].filter((c) => c.result);
    const scale = Math.max(...done.map((c) => c.result!.timing.totalMs));
    for (const c of done) c.timing.replaceChildren(renderTimingBar(c.result!.timing, scale));
  }
}
