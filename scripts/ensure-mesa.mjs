#!/usr/bin/env node
/**
 * Makes sure Mesa's lavapipe (software Vulkan with shader-f16) is installed for the dawn.node f16 kernel tests
 * (platform notes §11). Debian 12's own mesa-vulkan-drivers (22.3) is rejected by Dawn; bookworm-backports has 25.x.
 * If /usr/share/vulkan/icd.d/lvp_icd.json is absent or older than Vulkan 1.4 (Mesa < 25), and we are root with
 * apt-get on bookworm: add the backports source line when missing, `apt-get update`, install
 * `mesa-vulkan-drivers` from bookworm-backports. Otherwise it says what to install and returns the reason, and the
 * lavapipe suites skip with it (never fails the run: SwiftShader still covers the f32 kernels).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { aptGet, canApt, shellOk } from './apt.mjs';

export const LAVAPIPE_ICD = '/usr/share/vulkan/icd.d/lvp_icd.json';
const BACKPORTS_LINE = 'deb http://deb.debian.org/debian bookworm-backports main';
const BACKPORTS_FILE = '/etc/apt/sources.list.d/c2c-bookworm-backports.list';
const HOW = 'Debian 12: add "deb http://deb.debian.org/debian bookworm-backports main" to /etc/apt/sources.list.d/, then ' +
  '`apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers`';

/** Why the installed lavapipe is unusable for Dawn, or null when it is fine. */
export function lavapipeProblem() {
  if (!existsSync(LAVAPIPE_ICD)) return `no lavapipe ICD at ${LAVAPIPE_ICD}`;
  try {
    const api = JSON.parse(readFileSync(LAVAPIPE_ICD, 'utf8')).ICD?.api_version ?? '0';
    const [major, minor] = api.split('.').map(Number);
    // Mesa 22.3 reports Vulkan 1.3 and lacks what Dawn requires; Mesa 25 reports 1.4.
    if (major < 1 || (major === 1 && minor < 4)) return `lavapipe at ${LAVAPIPE_ICD} reports Vulkan ${api} (Mesa < 25, which Dawn rejects)`;
  } catch (e) {
    return `cannot read ${LAVAPIPE_ICD}: ${e.message}`;
  }
  return null;
}

/** Returns null when lavapipe is usable (installing it if it can), else the reason the lavapipe suites skip. */
export function ensureMesa() {
  let problem = lavapipeProblem();
  if (!problem) return null;
  const bookworm = shellOk('grep -q "VERSION_CODENAME=bookworm" /etc/os-release');
  if (!(bookworm && canApt())) return `${problem}; to run the f16 kernel tests install it (${HOW})`;
  console.log(`[ensure-mesa] ${problem}; installing mesa-vulkan-drivers from bookworm-backports…`);
  try {
    const hasBackports = shellOk('grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/');
    if (!hasBackports) writeFileSync(BACKPORTS_FILE, `${BACKPORTS_LINE}\n`);
    aptGet(['update', '-q'], 'ensure-mesa');
    aptGet(['install', '-y', '-q', '-t', 'bookworm-backports', 'mesa-vulkan-drivers'], 'ensure-mesa');
  } catch (e) {
    return `${problem}; installing it failed (${e.message}); ${HOW}`;
  }
  problem = lavapipeProblem();
  return problem ? `${problem} after installing; ${HOW}` : null;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const reason = ensureMesa();
  console.log(reason ? `[ensure-mesa] lavapipe unavailable: ${reason}` : `[ensure-mesa] lavapipe ready (${LAVAPIPE_ICD})`);
}
