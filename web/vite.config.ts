import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

// Built into dist/web; the server serves index.html for every page path and assets/ statically.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  plugins: [preact()],
  build: {
    outDir: '../dist/web',
    emptyOutDir: true,
    assetsDir: 'assets',
    // The bundle-size test reads the manifest to find what a signed-out visitor loads.
    manifest: true,
    // One stylesheet for the whole app (the CSP allows only style files from our origin).
    cssCodeSplit: false,
    target: 'es2022',
    // Every browser we support loads modules natively; the polyfill would only add bytes.
    modulePreload: { polyfill: false },
    sourcemap: false,
    // Nothing is inlined as a data: URL; every asset is a hashed file under assets/.
    assetsInlineLimit: 0,
  },
});
