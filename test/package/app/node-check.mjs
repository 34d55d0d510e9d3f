// The Node side of the installed package: C2C on the embedded pair shipped in it. Prints one JSON line.
// argv[2]: a JSON file [{ id, user }], argv[3]: max new tokens.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createNodeC2CEngine, embeddedPair } from 'c2c-web/node';

const cases = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const maxNewTokens = Number(process.argv[3]);
const options = embeddedPair();
const engine = await createNodeC2CEngine(options);
const tokens = {};
for (const c of cases) {
  tokens[c.id] = (await engine.generate([{ role: 'user', content: c.user }], { mode: 'c2c', maxNewTokens })).tokenIds;
}
// The `c2c-web/models/*` export: the same files, for apps that copy or serve them.
const exported = fileURLToPath(import.meta.resolve('c2c-web/models/c2c-tiny/pair.json'));
console.log(JSON.stringify({ options, exported, device: engine.device, tokens }));
await engine.dispose();
