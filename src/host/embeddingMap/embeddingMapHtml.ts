// The embedding map panel's page: its bundled script and styles from media/, under the same content
// security policy as the experiment panel (src/host/panel/panelHtml.ts): nothing inline, remote or
// eval'd except the one script carrying this page's nonce. The map is drawn on a 2-D canvas, which
// needs no further permission (WebGL through a scatter library would need none either, but costs
// ≈ 250 KiB of bundle for what a canvas draws fast enough; see media/src/embeddingMap/scatter.ts).
import * as crypto from 'crypto';
import * as vscode from 'vscode';
import type { MapPanelState } from '../../webview/embeddingMapProtocol';

function nonce(): string {
  return crypto.randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, '');
}

const escapeAttribute = (text: string) => text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

export function embeddingMapHtml(webview: vscode.Webview, extensionUri: vscode.Uri, title: string, state: MapPanelState): string {
  const media = (...parts: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', ...parts));
  const scriptNonce = nonce();
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource}`,
    `style-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${scriptNonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${media('dist', 'embeddingMap.css')}">
<title>${escapeAttribute(title)}</title>
</head>
<body>
<main id="app" data-state="${escapeAttribute(JSON.stringify(state))}"></main>
<script nonce="${scriptNonce}" src="${media('dist', 'embeddingMap.js')}"></script>
</body>
</html>`;
}
