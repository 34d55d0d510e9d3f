export declare const REPORT_ROUNDING: number;
export declare function accuracyMatches(measured: number, reported: number): boolean;
