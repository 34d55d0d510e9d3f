#!/usr/bin/env node
/**
 * Makes sure a system Chromium is present for the browser tests (never a Playwright-downloaded one).
 * Order: $CHROME_PATH, then /usr/bin/chromium; if neither exists and we are root with apt-get, install
 * Debian's `chromium` package; otherwise exit 1 saying exactly what to install.
 * Prints the path it settled on. Other scripts import `findChromium()`.
 */
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const DEFAULT_PATH = '/usr/bin/chromium';

export function findChromium() {
  const fromEnv = process.env.CHROME_PATH;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`CHROME_PATH is set to ${fromEnv}, but no file exists there.`);
    return fromEnv;
  }
  return existsSync(DEFAULT_PATH) ? DEFAULT_PATH : null;
}

function hasCommand(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function ensureChromium() {
  const found = findChromium();
  if (found) return found;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && hasCommand('apt-get')) {
    console.log('[ensure-chromium] Chromium not found; installing Debian package "chromium" with apt-get…');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const apt = (args) => {
      for (let attempt = 1; ; attempt++) {
        try {
          execFileSync('apt-get', args, { stdio: 'inherit', env });
          return;
        } catch (e) {
          if (attempt >= 5) throw e;
          console.log(`[ensure-chromium] apt-get failed (attempt ${attempt}); retrying in 10 s (dpkg lock?)`);
          execFileSync('sleep', ['10']);
        }
      }
    };
    apt(['update', '-q']);
    apt(['install', '-y', '-q', 'chromium']);
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
