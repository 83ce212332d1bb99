import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { assertBuilt, ROOT } from '../helpers/cli.js';
import { describeInBrowser } from '../helpers/browser.js';

// `npm run screenshots` (issue 10, item 11): every page in its main states at 1280 and 390 px.

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-screenshots-test-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A PNG's width and height, from its IHDR chunk. */
function pngSize(file: string): { width: number; height: number } {
  const head = fs.readFileSync(file).subarray(0, 24);
  expect(head.subarray(1, 4).toString('latin1')).toBe('PNG');
  return { width: head.readUInt32BE(16), height: head.readUInt32BE(20) };
}

describeInBrowser('npm run screenshots', () => {
  it('writes every page in its main states at 1280 and 390 px wide', { timeout: 300_000 }, async () => {
    assertBuilt();
    const run = spawn(process.execPath, [path.join(ROOT, 'scripts', 'screenshots.mjs')], { cwd: ROOT, env: { ...process.env, SCREENSHOTS_DIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    run.stdout.on('data', (c: Buffer) => (output += c.toString()));
    run.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const code = await new Promise<number | null>((resolve) => run.on('exit', resolve));
    expect(code, output).toBe(0);

    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.png'));
    const pages = ['login', 'forgot-password', 'reset-password-done', 'change-password', 'home', 'users', 'settings-smtp', 'mail', 'audit', 'dev-mailbox', 'account'];
    for (const page of pages) {
      for (const width of [1280, 390]) {
        const file = `${page}-${width}.png`;
        expect(files, file).toContain(file);
        expect(pngSize(path.join(dir, file)).width).toBe(width);
      }
    }
    expect(files.length).toBeGreaterThanOrEqual(30);
  });
});
