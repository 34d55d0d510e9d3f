/**
 * Parity check of an exported model folder in Node with @huggingface/transformers (offline, cpu, fp32):
 * tokenization, chat template and greedy generation must match the PyTorch values in a JSON written by
 * train/node_check.py. Usage: node train/check_node.mjs <cases.json>. Prints a JSON summary; exit 1 on mismatch.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { env, AutoTokenizer, AutoModelForCausalLM } from '@huggingface/transformers';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = path.resolve(spec.root) + '/';

let bad = 0;
const summary = [];
for (const m of spec.models) {
  const tok = await AutoTokenizer.from_pretrained(m.name);
  const model = await AutoModelForCausalLM.from_pretrained(m.name, { device: 'cpu', dtype: 'fp32' });
  let tokOk = 0, chatOk = 0, genOk = 0;
  for (const t of m.texts) {
    const ids = Array.from(tok.encode(t.text, { add_special_tokens: false }));
    if (JSON.stringify(ids) === JSON.stringify(t.ids)) tokOk++;
    else { bad++; console.error(`[${m.name}] tokenize mismatch for ${JSON.stringify(t.text)}: ${ids} vs ${t.ids}`); }
    const dec = tok.decode(t.ids, { skip_special_tokens: false });
    if (dec !== t.text) { bad++; console.error(`[${m.name}] decode mismatch: ${JSON.stringify(dec)}`); }
  }
  for (const g of m.gens) {
    const chatText = tok.apply_chat_template([{ role: 'user', content: g.user }],
      { add_generation_prompt: true, tokenize: false });
    const chatIds = Array.from(tok.encode(chatText, { add_special_tokens: false }));
    if (JSON.stringify(chatIds) === JSON.stringify(g.prompt_ids)) chatOk++;
    else { bad++; console.error(`[${m.name}] chat template mismatch: ${chatIds} vs ${g.prompt_ids}`); }
    const inputs = tok.apply_chat_template([{ role: 'user', content: g.user }],
      { add_generation_prompt: true, return_dict: true });
    const out = await model.generate({ ...inputs, max_new_tokens: g.max_new, do_sample: false });
    const gen = Array.from(out.tolist()[0]).map(Number).slice(g.prompt_ids.length);
    if (JSON.stringify(gen) === JSON.stringify(g.output_ids)) genOk++;
    else { bad++; console.error(`[${m.name}] greedy mismatch: ${gen} vs ${g.output_ids}`); }
  }
  // batched left-padded generation must give the same per-row outputs
  if (m.gens.length >= 2) {
    const texts = m.gens.slice(0, 2).map((g) => tok.apply_chat_template([{ role: 'user', content: g.user }],
      { add_generation_prompt: true, tokenize: false }));
    const enc = tok(texts, { padding: true, add_special_tokens: false });
    const out = await model.generate({ ...enc, max_new_tokens: m.gens[0].max_new, do_sample: false });
    const rows = out.tolist();
    const width = enc.input_ids.dims[1];
    m.gens.slice(0, 2).forEach((g, i) => {
      const gen = Array.from(rows[i]).map(Number).slice(width, width + g.output_ids.length);
      if (JSON.stringify(gen) !== JSON.stringify(g.output_ids)) { bad++; console.error(`[${m.name}] batched row ${i}: ${gen} vs ${g.output_ids}`); }
    });
  }
  summary.push({ model: m.name, tokenize: `${tokOk}/${m.texts.length}`, chat: `${chatOk}/${m.gens.length}`, greedy: `${genOk}/${m.gens.length}` });
  await model.dispose();
}
console.log(JSON.stringify({ ok: bad === 0, summary }));
process.exit(bad === 0 ? 0 : 1);
