/**
 * The bottom floor: every type that two or more folders share (chat messages, model sources and info, KV
 * caches, fuser weights and the Fuser interface, the engine's public types, the host protocol). Types only
 * (plus GENERATION_MODES, the mode union's members at run time); nothing here imports from another folder.
 */
export type * from './kv';
export type * from './fuser';
export type * from './model';
export type * from './host';
export type * from './openai';
export * from './engine';
