import type { BenchRun } from '../src/demo/bench-core';
import type { DeviceReport, GenerationMode } from '../src/engine/types';
export declare function describeDevice(d: DeviceReport): string;
export declare function formatTable(run: BenchRun & { consoleErrors?: string[] }, reference?: Partial<Record<GenerationMode, number>>, fullSetSize?: number): string;
