// Pieces for user-level UI tests: the packaged extension (.vsix) installed into a fresh
// code-server, the workbench open in Chromium, and helpers that act the way a person does
// (command palette, Explorer context menu, webview content, screenshots).
//
// Only the code-server backend can do this (it needs a browser page); these tests run in plain
// Node (mocha CLI), not inside the extension host.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { Browser, Frame, Page } from 'playwright-core';
import { launchChromium } from './chromium';
import { RunningCodeServer, startCodeServer } from './codeServer';

export interface WorkbenchOptions {
  /** The packaged extension; installed with `--install-extension` before the server starts. */
  vsix: string;
  /** Folder opened in the window (must exist). */
  workspaceFolder: string;
  /** Merged over the harness's default user settings. */
  settings?: Record<string, unknown>;
  /** Extra environment for the server and its extension host. */
  env?: Record<string, string | undefined>;
  viewport?: { width: number; height: number };
  /** Open the folder with workspace trust on: untrusted, i.e. in Restricted Mode. */
  workspaceTrust?: boolean;
}

export interface OpenWorkbench {
  page: Page;
  browser: Browser;
  server: RunningCodeServer;
  /** Closes the browser and stops the server; safe to call twice. */
  stop(): Promise<void>;
}

const WORKBENCH_READY_TIMEOUT_MS = 60_000;

export async function openWorkbench(options: WorkbenchOptions): Promise<OpenWorkbench> {
  if (!fs.existsSync(options.vsix)) throw new Error(`no .vsix at ${options.vsix}`);
  const server = await startCodeServer({
    vsixFiles: [options.vsix], settings: options.settings, env: options.env, workspaceTrust: options.workspaceTrust,
  });
  let browser: Browser | undefined;
  const stop = async () => {
    await browser?.close();
    browser = undefined;
    await server.stop();
  };
  try {
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: options.viewport ?? { width: 1280, height: 800 } });
    await page.goto(server.workbenchUrl(options.workspaceFolder));
    // The activity bar and the Explorer's folder row exist once the workbench has restored the
    // window and read the workspace over the remote connection.
    await page.locator('.monaco-workbench .part.activitybar').waitFor({ timeout: WORKBENCH_READY_TIMEOUT_MS });
    await page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: WORKBENCH_READY_TIMEOUT_MS });
    return { page, browser, server, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Packages an extension folder into a .vsix with the repository's own vsce (which runs the
 * `vscode:prepublish` script). Never prompts: a missing LICENSE or repository is allowed. */
export function packageExtension(extensionDir: string, outFile: string): string {
  const vsce = require.resolve('@vscode/vsce/vsce');
  fs.mkdirSync(path.dirname(path.resolve(outFile)), { recursive: true });
  execFileSync(process.execPath, [vsce, 'package', '--skip-license', '--allow-missing-repository', '--out', path.resolve(outFile)], {
    cwd: extensionDir,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return path.resolve(outFile);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function exactText(text: string): RegExp {
  return new RegExp(`^\\s*${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);
}

/** F1, types `title` (as the palette shows it, e.g. "SimSiam: Train Model") and picks the row
 * with exactly that label. Retries while the row is missing: the palette lists a command only
 * after the extension's contributions are registered. */
export async function runCommandFromPalette(page: Page, title: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const input = page.locator('.quick-input-widget .quick-input-box input');
  const row = page.locator('.quick-input-widget .monaco-list-row').filter({ has: page.locator('.label-name', { hasText: exactText(title) }) });
  while (true) {
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(`>${title}`);
    try {
      await row.first().waitFor({ state: 'visible', timeout: 3_000 });
      await row.first().click();
      await input.waitFor({ state: 'hidden', timeout: 10_000 });
      return;
    } catch (error) {
      await page.keyboard.press('Escape');
      if (Date.now() > deadline) throw new Error(`command "${title}" never appeared in the palette: ${String(error)}`);
      await sleep(500);
    }
  }
}

async function showExplorer(page: Page): Promise<void> {
  if (await page.locator('.explorer-folders-view').isVisible()) return;
  await runCommandFromPalette(page, 'View: Show Explorer');
  await page.locator('.explorer-folders-view').waitFor({ state: 'visible' });
}

function explorerRow(page: Page, name: string) {
  return page.locator('.explorer-folders-view .monaco-list-row').filter({ has: page.locator('.label-name', { hasText: exactText(name) }) }).first();
}

/** Right-clicks `relativePath` in the Explorer (folders on the way are expanded; paths use "/")
 * and clicks the context-menu entry labelled `menuEntry` (menus show a command's title without
 * its category). */
export async function rightClickExplorerItem(page: Page, relativePath: string, menuEntry: string): Promise<void> {
  await showExplorer(page);
  const segments = relativePath.split('/').filter(Boolean);
  for (const folder of segments.slice(0, -1)) {
    const folderRow = explorerRow(page, folder);
    await folderRow.waitFor({ state: 'visible' });
    if ((await folderRow.getAttribute('aria-expanded')) !== 'true') await folderRow.click();
  }
  const itemRow = explorerRow(page, segments[segments.length - 1]);
  await itemRow.waitFor({ state: 'visible' });
  await itemRow.click({ button: 'right' });
  const entry = page.locator('.context-view .monaco-menu .action-item .action-label', { hasText: exactText(menuEntry) }).first();
  await entry.waitFor({ state: 'visible', timeout: 10_000 });
  // The menu animates in; a click during the animation can land on the wrong row.
  await sleep(300);
  await entry.click();
}

/** Webviews are iframes nested inside iframes; returns the first frame (of any depth) in which
 * `selectorOrPredicate` matches: a CSS selector that has a match there, or a predicate that
 * resolves true. Polls until `timeoutMs`. */
export async function findWebviewFrame(
  page: Page,
  selectorOrPredicate: string | ((frame: Frame) => boolean | Promise<boolean>),
  timeoutMs = 60_000,
): Promise<Frame> {
  const matches =
    typeof selectorOrPredicate === 'string'
      ? async (frame: Frame) => (await frame.locator(selectorOrPredicate).count()) > 0
      : selectorOrPredicate;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      if (frame === page.mainFrame()) continue;
      try {
        if (await matches(frame)) return frame;
      } catch {
        // The frame navigated or detached while being inspected; look again on the next pass.
      }
    }
    await sleep(250);
  }
  throw new Error(`no webview frame matched ${String(selectorOrPredicate)} within ${timeoutMs} ms`);
}

/** Waits for a notification toast whose message contains `text`; returns its full message. */
export async function waitForNotification(page: Page, text: string | RegExp, timeoutMs = 30_000): Promise<string> {
  const toast = page.locator('.notification-toast .notification-list-item-message', { hasText: text }).first();
  await toast.waitFor({ state: 'visible', timeout: timeoutMs });
  await sleep(400); // toasts fade in; a screenshot taken right away shows them half transparent
  return (await toast.textContent()) ?? '';
}

/** Saves a PNG of the whole window (creating the folder) and returns its path. */
export async function screenshot(page: Page, filePath: string): Promise<string> {
  fs.mkdirSync(path.dirname(path.resolve(filePath)), { recursive: true });
  await page.screenshot({ path: filePath });
  return path.resolve(filePath);
}
