/**
 * The pair's held-out eval set (JSONL, one QA item per line, written by train/) and the answer scorer.
 * The scorer mirrors the PyTorch report's rule so that measured accuracies are comparable item for item.
 */
import { InvalidInputError, ModelLoadError } from '../errors';

export interface EvalItem {
  /** The user message the models see (question plus answer format instruction). */
  prompt: string;
  /** Gold answer: the right option written out for multiple choice, one word for short answers. */
  answer: string;
  question?: string;
  type?: string;
  entity?: string;
  /** Question kind (`country`, `workplace` in the embedded pair). */
  ask?: string;
  options?: string[];
}

export function parseEvalJsonl(text: string, source: string): EvalItem[] {
  const items: EvalItem[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      throw new InvalidInputError(`${source}: line ${i + 1} is not valid JSON`, { field: `line ${i + 1}` });
    }
    const o = obj as Record<string, unknown>;
    if (typeof o.prompt !== 'string' || typeof o.answer !== 'string') {
      throw new InvalidInputError(`${source}: line ${i + 1} needs string fields "prompt" and "answer"`, { field: 'prompt/answer' });
    }
    items.push(o as unknown as EvalItem);
  });
  return items;
}

export async function fetchEvalSet(url: string, signal?: AbortSignal): Promise<EvalItem[]> {
  const res = await fetch(url, { signal });
  if (!res.ok) throw new ModelLoadError(`eval set ${url}: HTTP ${res.status}`, { field: 'eval' });
  return parseEvalJsonl(await res.text(), url);
}

/**
 * The PyTorch report's rule (models/c2c-tiny/pair.json `eval.answer`): the decoded text up to <|im_end|>,
 * stripped, must equal the gold answer exactly (case-sensitive; no punctuation folding).
 */
export function scoreAnswer(text: string, item: Pick<EvalItem, 'answer'>): boolean {
  return text.trim() === item.answer.trim();
}
