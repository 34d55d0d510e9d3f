#!/usr/bin/env node
/**
 * Makes sure a system Chromium is present for the browser tests (never a Playwright-downloaded one).
 * Order: $CHROME_PATH, then /usr/bin/chromium; if neither exists and we are root with apt-get, install
 * Debian's `chromium` package; otherwise exit 1 saying exactly what to install.
 * Prints the path it settled on. Other scripts import `findChromium()`.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { aptGet, canApt } from './apt.mjs';

const DEFAULT_PATH = '/usr/bin/chromium';

export function findChromium() {
  const fromEnv = process.env.CHROME_PATH;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`CHROME_PATH is set to ${fromEnv}, but no file exists there.`);
    return fromEnv;
  }
  return existsSync(DEFAULT_PATH) ? DEFAULT_PATH : null;
}

export function ensureChromium() {
  const found = findChromium();
  if (found) return found;
  if (canApt()) {
    console.log('[ensure-chromium] Chromium not found; installing Debian package "chromium" with apt-get…');
    aptGet(['update', '-q'], 'ensure-chromium');
    aptGet(['install', '-y', '-q', 'chromium'], 'ensure-chromium');
    const after = findChromium();
    if (after) return after;
  }
  throw new Error(
    'No Chromium found. Install the system package (Debian/Ubuntu: `sudo apt-get install -y chromium`) ' +
      `so that ${DEFAULT_PATH} exists, or set CHROME_PATH to a Chromium/Chrome binary with WebGPU support. ` +
      'Do not use a Playwright-downloaded headless shell: it lacks WebGPU.',
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    console.log(`[ensure-chromium] using ${ensureChromium()}`);
  } catch (e) {
    console.error(`[ensure-chromium] ${e.message}`);
    process.exit(1);
  }
}
