#!/usr/bin/env node
/**
 * Makes sure Debian's PyTorch and onnx are importable from /usr/bin/python3 for the golden and fidelity checks and
 * the training smoke run (test/standins, test/engine, test/train, train/tests). If not and we are root with apt-get,
 * installs Debian's `python3-torch` and `python3-onnx`, with `libopenblas0-pthread`: Debian's torch links
 * libblas.so.3, which is otherwise the reference BLAS (20-40x slower). Returns null when both are ready, else the
 * reason (those suites then skip and say so).
 */
import { fileURLToPath } from 'node:url';
import { aptGet, canApt, shellOk } from './apt.mjs';

export const PYTHON = '/usr/bin/python3';
const PACKAGES = ['python3-torch', 'python3-onnx', 'libopenblas0-pthread'];
const hasTorch = () => shellOk(`${PYTHON} -c 'import torch, onnx'`);
const hasOpenBlas = () => shellOk('dpkg -s libopenblas0-pthread');

export function ensureTorch() {
  if (hasTorch() && (hasOpenBlas() || !canApt())) return null;
  if (!canApt()) return `${PYTHON} cannot import torch and onnx, and this process cannot apt-get install them (not root)`;
  console.log(`[ensure-torch] installing Debian packages ${PACKAGES.join(', ')} with apt-get…`);
  try {
    aptGet(['update', '-q'], 'ensure-torch');
    aptGet(['install', '-y', '-q', ...PACKAGES], 'ensure-torch');
  } catch (e) {
    return `apt-get install ${PACKAGES.join(' ')} failed: ${e.message}`;
  }
  return hasTorch() ? null : `${PYTHON} still cannot import torch and onnx after installing ${PACKAGES.join(', ')}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const reason = ensureTorch();
  console.log(reason ? `[ensure-torch] ${reason}` : '[ensure-torch] torch and onnx: ready');
  process.exit(reason ? 1 : 0);
}
