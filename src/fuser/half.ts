/** The f16/bf16 bit conversions live in src/util/half.ts (the KV layer needs them too); kept importable here. */
export * from '../util/half';
