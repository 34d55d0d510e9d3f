/** The four ways the engine can answer. */
export type GenerationMode = 'c2c' | 'text-relay' | 'receiver' | 'sharer';
/** The modes in the order compare() runs them (the one value in this folder: the union's members at run time). */
export const GENERATION_MODES: readonly GenerationMode[] = ['receiver', 'sharer', 'text-relay', 'c2c'];
