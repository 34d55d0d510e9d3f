// What a Vite app needs for c2c-web (README.md "What a Vite app needs"). A plain object: this fixture app has no
// vite of its own (the test builds it with the repo's vite); a real app would wrap it in defineConfig.
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default {
  appType: 'mpa',
  worker: { format: 'es' },
  build: { target: 'esnext' },
  server: { headers: isolation },
  preview: { headers: isolation, host: '127.0.0.1' },
};
