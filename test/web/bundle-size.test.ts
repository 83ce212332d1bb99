import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';

// DESIGN §3: what a signed-out person loads (/login, /forgot-password, /reset-password) is at most 60 KB gzipped.
const BUDGET_BYTES = 60 * 1024;
const WEB_ROOT = fileURLToPath(new URL('../../dist/web', import.meta.url));

interface ManifestChunk {
  file: string;
  src?: string;
  isEntry?: boolean;
  isDynamicEntry?: boolean;
  imports?: string[];
  dynamicImports?: string[];
  css?: string[];
}
type Manifest = Record<string, ManifestChunk>;

function readManifest(): Manifest {
  const file = path.join(WEB_ROOT, '.vite', 'manifest.json');
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run build:web\` before this test`);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
}

/** The entry chunk, every chunk it imports statically (transitively), and their stylesheets. */
function initialFiles(manifest: Manifest): string[] {
  const entry = manifest['index.html'];
  if (!entry?.isEntry) throw new Error('the manifest has no index.html entry');
  const files = new Set<string>();
  const visit = (key: string): void => {
    const chunk = manifest[key];
    if (chunk === undefined || files.has(chunk.file)) return;
    files.add(chunk.file);
    for (const css of chunk.css ?? []) files.add(css);
    for (const imported of chunk.imports ?? []) visit(imported);
  };
  visit('index.html');
  // With one stylesheet for the whole app (cssCodeSplit off) it is a manifest entry of its own.
  for (const chunk of Object.values(manifest)) if (chunk.file.endsWith('.css')) files.add(chunk.file);
  return [...files];
}

function gzippedBytes(file: string): number {
  return gzipSync(fs.readFileSync(path.join(WEB_ROOT, file)), { level: 9 }).length;
}

describe('the web bundle', () => {
  it('loads at most 60 KB of JS and CSS, gzipped, for the signed-out pages', () => {
    const manifest = readManifest();
    const files = initialFiles(manifest);
    const sizes = files.map((file) => ({ file, gzipBytes: gzippedBytes(file) }));
    const total = sizes.reduce((sum, s) => sum + s.gzipBytes, 0);
    console.log(
      `signed-out bundle: ${(total / 1024).toFixed(1)} KB gzipped (budget ${BUDGET_BYTES / 1024} KB)\n` +
        sizes.map((s) => `  ${s.file}: ${(s.gzipBytes / 1024).toFixed(1)} KB`).join('\n'),
    );
    expect(files.some((f) => f.endsWith('.js'))).toBe(true);
    expect(files.some((f) => f.endsWith('.css'))).toBe(true);
    expect(total).toBeLessThan(BUDGET_BYTES);

    // What index.html actually references is exactly what was counted.
    const html = fs.readFileSync(path.join(WEB_ROOT, 'index.html'), 'utf8');
    const referenced = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+)"/g)].map((m) => m[1]!);
    // The favicon is an image, not JS or CSS: it is not part of the budget.
    const icons = referenced.filter((file) => file.endsWith('.svg'));
    expect(icons).toHaveLength(1);
    expect(referenced.filter((file) => !icons.includes(file)).sort()).toEqual([...files].sort());
  });

  it('puts the users page in its own lazily loaded chunk', () => {
    const manifest = readManifest();
    const users = Object.values(manifest).find((chunk) => chunk.src === 'src/app/routes/users.tsx');
    expect(users, 'a manifest chunk for src/app/routes/users.tsx').toBeDefined();
    expect(users!.isDynamicEntry).toBe(true);
    expect(manifest['index.html']!.dynamicImports).toContain('src/app/routes/users.tsx');
    expect(initialFiles(manifest)).not.toContain(users!.file);
    // The table's code is really in that chunk and not in the initial one.
    const initialJs = initialFiles(manifest)
      .filter((f) => f.endsWith('.js'))
      .map((f) => fs.readFileSync(path.join(WEB_ROOT, f), 'utf8'))
      .join('\n');
    expect(initialJs).not.toContain('Add a user');
    expect(fs.readFileSync(path.join(WEB_ROOT, users!.file), 'utf8')).toContain('Add a user');
  });

  it('puts each admin page and the dev mailbox in a lazily loaded chunk of its own', () => {
    const manifest = readManifest();
    const initial = initialFiles(manifest);
    const initialJs = initial
      .filter((f) => f.endsWith('.js'))
      .map((f) => fs.readFileSync(path.join(WEB_ROOT, f), 'utf8'))
      .join('\n');
    for (const [page, text] of [
      ['settings', 'Send test email'],
      ['mail', 'That is the oldest delivery.'],
      ['audit', 'That is the oldest event.'],
      ['dev-mailbox', 'The dev mailbox is off'],
    ] as const) {
      const chunk = Object.values(manifest).find((c) => c.src === `src/app/routes/${page}.tsx`);
      expect(chunk, `a manifest chunk for src/app/routes/${page}.tsx`).toBeDefined();
      expect(chunk!.isDynamicEntry, page).toBe(true);
      expect(initial, page).not.toContain(chunk!.file);
      expect(initialJs, page).not.toContain(text);
      expect(fs.readFileSync(path.join(WEB_ROOT, chunk!.file), 'utf8'), page).toContain(text);
    }
  });

  it('has no inline script or style in index.html (the CSP allows neither)', () => {
    const html = fs.readFileSync(path.join(WEB_ROOT, 'index.html'), 'utf8');
    expect(html).toMatch(/<html lang="en">/);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style[\s>]/);
    expect(html).not.toMatch(/\sstyle=/);
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
  });
});
