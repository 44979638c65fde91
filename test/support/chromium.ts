/**
 * Debian's headless Chromium driven by playwright-core (which downloads no browser): the flags
 * docs/machine-notes.md found to work on these machines (SwiftShader WebGL, no sandbox as root, no background
 * traffic). `local/setup` installs the `chromium` package.
 */
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env['SPLATFLOW_CHROMIUM'] ?? '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}
