/**
 * Shell and apt-get helpers for the scripts that install system packages for the tests
 * (ensure-chromium.mjs, ensure-mesa.mjs).
 */
import { execFileSync } from 'node:child_process';

/** Whether `sh -c cmd` exits 0 (its output discarded). */
export function shellOk(cmd) {
  try {
    execFileSync('sh', ['-c', cmd], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Whether this process can install system packages: root, with apt-get on the PATH. */
export function canApt() {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return isRoot && shellOk('command -v apt-get');
}

/** Runs `apt-get ...args` non-interactively; retries 4 times, 10 s apart (a dpkg lock held by another run). */
export function aptGet(args, tag) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (let attempt = 1; ; attempt++) {
    try {
      execFileSync('apt-get', args, { stdio: 'inherit', env });
      return;
    } catch (e) {
      if (attempt >= 5) throw e;
      console.log(`[${tag}] apt-get failed (attempt ${attempt}); retrying in 10 s (dpkg lock?)`);
      execFileSync('sleep', ['10']);
    }
  }
}
