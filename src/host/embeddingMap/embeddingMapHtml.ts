// The embedding map panel's page, under the panels' one content security policy
// (../panel/panelHtml.ts). The map is drawn on a 2-D canvas, which needs no further permission
// (WebGL through a scatter library would need none either, but costs ≈ 250 KiB of bundle for what a
// canvas draws fast enough; see media/src/embeddingMap/scatter.ts).
import type * as vscode from 'vscode';
import type { MapPanelState } from '../../webview/embeddingMapProtocol';
import { webviewPage } from '../panel/panelHtml';

export function embeddingMapHtml(webview: vscode.Webview, extensionUri: vscode.Uri, title: string, state: MapPanelState): string {
  return webviewPage(webview, extensionUri, {
    title, state, styles: [['dist', 'embeddingMap.css']], script: ['dist', 'embeddingMap.js'],
  });
}
