import type { DeviceReport, GenerationMode } from '../types';

export declare const PAPER: {
  source: string;
  device: string;
  pair: string;
  accuracyGainOverSingle: string;
  accuracyGainOverRelay: string;
  speedupOverRelay: string;
  tableMs: { receiver: number; c2c: number; textRelay: number; fusion: number; receiverPrefill: number };
};
export declare function runDevice(device: Pick<DeviceReport, 'backend' | 'adapter'>): string;
export declare function paperComparisonLines(run: {
  summaries: ReadonlyArray<{ mode: GenerationMode; accuracy: number }>;
  c2cSpeedupOverRelay: number | null;
  c2cOverReceiver: number | null;
  device: Pick<DeviceReport, 'backend' | 'adapter'>;
}): string[];
