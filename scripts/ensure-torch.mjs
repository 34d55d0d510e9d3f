#!/usr/bin/env node
/**
 * Makes sure Debian's PyTorch is importable from /usr/bin/python3 for the golden and fidelity checks
 * (test/standins, test/engine, train/tests). If it is missing and we are root with apt-get, installs Debian's
 * `python3-torch`, with `libopenblas0-pthread`: Debian's torch links libblas.so.3, which is otherwise the
 * reference BLAS (20-40x slower). Returns null when torch is ready, else the reason (those suites then skip and
 * say so).
 */
import { fileURLToPath } from 'node:url';
import { aptGet, canApt, shellOk } from './apt.mjs';

export const PYTHON = '/usr/bin/python3';
const PACKAGES = ['python3-torch', 'libopenblas0-pthread'];
const hasTorch = () => shellOk(`${PYTHON} -c 'import torch'`);
const hasOpenBlas = () => shellOk('dpkg -s libopenblas0-pthread');

export function ensureTorch() {
  if (hasTorch() && (hasOpenBlas() || !canApt())) return null;
  if (!canApt()) return `${PYTHON} cannot import torch and this process cannot apt-get install python3-torch (not root)`;
  console.log(`[ensure-torch] installing Debian packages ${PACKAGES.join(', ')} with apt-get…`);
  try {
    aptGet(['update', '-q'], 'ensure-torch');
    aptGet(['install', '-y', '-q', ...PACKAGES], 'ensure-torch');
  } catch (e) {
    return `apt-get install ${PACKAGES.join(' ')} failed: ${e.message}`;
  }
  return hasTorch() ? null : `${PYTHON} still cannot import torch after installing python3-torch`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const reason = ensureTorch();
  console.log(reason ? `[ensure-torch] ${reason}` : '[ensure-torch] torch: ready');
  process.exit(reason ? 1 : 0);
}
