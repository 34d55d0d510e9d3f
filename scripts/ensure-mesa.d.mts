export declare const LAVAPIPE_ICD: string;
/** Why the installed lavapipe is unusable for Dawn (absent, or Mesa < 25), or null when it is fine. */
export declare function lavapipeProblem(): string | null;
/** Installs lavapipe from bookworm-backports when it can (root + apt); returns null when usable, else the reason. */
export declare function ensureMesa(): string | null;
