import type { Browser, Page } from 'playwright-core';
export declare const REPO: string;
export declare const CHROME_ARGS: string[];
export declare function chromePath(): string;
export declare function buildDemo(outDir?: string): Promise<string>;
export declare function serveDemo(outDir?: string, port?: number): Promise<{ url: string; close: () => Promise<void> }>;
export declare function launchBrowser(extraArgs?: string[]): Promise<Browser>;
export declare function closeBrowser(browser: Browser): Promise<'closed' | 'error' | 'timeout'>;
export declare function watchConsole(page: Page): string[];
