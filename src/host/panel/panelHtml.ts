// The webview pages (experiment panel, runs table, embedding map): the bundled script and styles
// from media/, under a content security policy that allows nothing inline, remote or eval'd except
// the one script carrying the page's nonce.
import * as crypto from 'crypto';
import * as vscode from 'vscode';
import type { PanelState } from '../../webview/protocol';

function nonce(): string {
  return crypto.randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, '');
}

const escapeAttribute = (text: string) => text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

/** What differs between SimSiam's webview pages: their title, starting state, styles and script under media/. */
export interface WebviewPage {
  title: string;
  /** What the script starts from (and, for a restorable panel, saves with setState). */
  state: unknown;
  /** Paths under media/, in order. */
  styles: string[][];
  script: string[];
}

/** Every SimSiam webview's page, under the one content security policy. */
export function webviewPage(webview: vscode.Webview, extensionUri: vscode.Uri, page: WebviewPage): string {
  const media = (parts: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', ...parts));
  const scriptNonce = nonce();
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource}`,
    `style-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${scriptNonce}'`,
  ].join('; ');
  const styles = page.styles.map((parts) => `<link rel="stylesheet" href="${media(parts)}">`).join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
${styles}
<title>${escapeAttribute(page.title)}</title>
</head>
<body>
<main id="app" data-state="${escapeAttribute(JSON.stringify(page.state))}"></main>
<script nonce="${scriptNonce}" src="${media(page.script)}"></script>
</body>
</html>`;
}

/** The page of a run's panel; `state` is what the script starts from and saves with setState. */
export function panelHtml(webview: vscode.Webview, extensionUri: vscode.Uri, title: string, state: PanelState): string {
  return webviewPage(webview, extensionUri, {
    title, state, styles: [['dist', 'uPlot.min.css'], ['panel.css']], script: ['dist', 'panel.js'],
  });
}
