// The browser that renders the code-server workbench in tests: Debian's Chromium, driven by
// playwright-core (which never downloads a browser of its own).
import { chromium, Browser } from 'playwright-core';

export const CHROMIUM_EXECUTABLE = process.env.SIMSIAM_CHROMIUM ?? '/usr/bin/chromium';

// Headless in a container as root: no sandbox, no GPU, no /dev/shm limits; nothing that phones
// home (there is no network to phone).
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_EXECUTABLE,
    args: CHROMIUM_ARGS,
    headless: process.env.SIMSIAM_VSCODE_HEADED !== '1',
  });
}
