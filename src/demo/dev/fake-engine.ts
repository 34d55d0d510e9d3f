/**
 * FAKE engine for developing and testing the demo UI only (`?engine=fake`). It implements `C2CEngine`
 * with canned words and simulated timings; nothing it produces is a measurement. The page shows a
 * "FAKE ENGINE" banner and every benchmark run records `engineKind: 'fake'`. The real demo path and
 * `npm run bench` never import this module.
 */
import type { C2CEngine, ChatMessage, DeviceReport, EngineOptions, GenerateOptions, GenerationMode, GenerationResult, StreamEvent,
  TokenEvent, TimingBreakdown } from '../../types';
import { AbortError } from '../../errors';
import { createChatCompletions } from '../../engine/openai';

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); reject(new AbortError('aborted')); }, { once: true });
  });

function hash(s: string): number {
  let x = 2166136261;
  for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 16777619);
  return x >>> 0;
}

const WORDS = ['Norway', 'France', 'airport', 'school', 'B', 'A', 'Japan', 'harbour'];

export async function createFakeEngineForUiTests(opts: EngineOptions): Promise<C2CEngine> {
  const device: DeviceReport = {
    backend: opts.device === 'webgpu' ? 'webgpu' : 'wasm',
    // On 'webgpu' the fake pretends its WebGPU fuser failed, so the UI's fuser-fallback row can be tested.
    fuserBackend: 'cpu',
    shaderF16: false,
    topology: 'workers',
    prefixReuse: false,
    models: { receiver: { modelDType: 'fp32', kvDType: 'float32' }, sharer: { modelDType: 'fp32', kvDType: 'float32' } },
    fallbackReason: opts.device === 'auto' ? 'fake engine: pretends WebGPU is unavailable' : undefined,
    fuserFallbackReason: opts.device === 'webgpu' ? 'fake engine: pretends the WebGPU fuser failed' : undefined,
  };
  for (const phase of ['download', 'compile', 'warmup'] as const) {
    for (let i = 1; i <= 4; i++) {
      await sleep(15, opts.signal);
      opts.onProgress?.({ phase, loaded: i, total: 4, progress: i / 4, model: 'receiver', file: `fake-${phase}-${i}` });
    }
  }

  async function generate(messages: ChatMessage[], g: GenerateOptions = {}): Promise<GenerationResult> {
    const mode: GenerationMode = g.mode ?? 'c2c';
    const t0 = performance.now();
    const user = messages.map((m) => m.content).join('\n');
    const h = hash(user + mode);
    const stage = { sharerPrefillMs: 0, receiverPrefillMs: 0, fuseMs: 0, relayMs: 0 };
    let hint: GenerationResult['hint'];
    const emit = (e: TokenEvent) => g.onToken?.(e);
    if (mode === 'c2c' || mode === 'text-relay' || mode === 'sharer') { await sleep(6, g.signal); stage.sharerPrefillMs = 6; }
    if (mode === 'text-relay') {
      const words = ['Hint:', 'the', 'answer', 'is', WORDS[h % WORDS.length]];
      for (let i = 0; i < words.length; i++) {
        await sleep(8, g.signal);
        emit({ type: 'token', mode, source: 'sharer', tokenId: 100 + i, text: (i ? ' ' : '') + words[i], index: i });
      }
      stage.relayMs = 8 * words.length;
      hint = { text: words.join(' '), tokenIds: words.map((_, i) => 100 + i) };
    }
    if (mode !== 'sharer') { await sleep(mode === 'text-relay' ? 9 : 5,
      g.signal); stage.receiverPrefillMs = mode === 'text-relay' ? 9 : 5; }
    if (mode === 'c2c') { await sleep(2, g.signal); stage.fuseMs = 2; }
    const ttftMs = performance.now() - t0;
    const answer = [WORDS[(h >>> 3) % WORDS.length]];
    const d0 = performance.now();
    const ids: number[] = [];
    for (let i = 0; i < Math.min(answer.length, g.maxNewTokens ?? 16); i++) {
      await sleep(7, g.signal);
      ids.push(200 + i);
      emit({ type: 'token', mode, source: mode === 'sharer' ? 'sharer' : 'receiver', tokenId: 200 + i, text: answer[i], index: i });
    }
    const decodeMs = performance.now() - d0;
    const timing: TimingBreakdown = {
      ...stage, ttftMs, decodeMs, decodeTokensPerS: ids.length / (decodeMs / 1000), totalMs: performance.now() - t0, device,
    };
    return { mode, text: answer.join(''), tokenIds: ids, promptIds: [1, 2, 3], hint, finishReason: 'eos', timing,
      reused: { receiver: 0, sharer: 0, fused: 0 } };
  }

  const engine: C2CEngine = {
    device,
    modelId: 'fake-ui-test',
    chat: { completions: createChatCompletions({ modelId: 'fake-ui-test', generate: (m, o) => engine.generate(m, o),
      stream: (m, o) => engine.stream(m, o) }) },
    generate,
    async *stream(messages, o = {}) {
      const queue: StreamEvent[] = [];
      let wake: (() => void) | null = null;
      let done = false;
      let error: unknown;
      generate(messages, { ...o, onToken: (e) => { queue.push(e); wake?.(); } })
        .then((result) => { queue.push({ type: 'done', result }); })
        .catch((e) => { error = e; })
        .finally(() => { done = true; wake?.(); });
      while (true) {
        while (queue.length) yield queue.shift()!;
        if (done) { if (error) throw error; while (queue.length) yield queue.shift()!; return; }
        await new Promise<void>((r) => { wake = r; });
        wake = null;
      }
    },
    async compare(messages, o = {}) {
      const out = {} as Record<GenerationMode, GenerationResult>;
      for (const m of o.modes ?? ['receiver', 'sharer', 'text-relay', 'c2c']) out[m] = await generate(messages, { ...o, mode: m });
      return out;
    },
    async reload() {},
    async resetChat() {},
    async dispose() {},
  };
  return engine;
}
