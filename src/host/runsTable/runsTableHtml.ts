// The runs table's page, under the panels' one content security policy (../panel/panelHtml.ts).
import type * as vscode from 'vscode';
import type { RunsTableState } from '../../webview/runsTableProtocol';
import { webviewPage } from '../panel/panelHtml';

export function runsTableHtml(webview: vscode.Webview, extensionUri: vscode.Uri, title: string, state: RunsTableState): string {
  return webviewPage(webview, extensionUri, {
    title, state, styles: [['dist', 'uPlot.min.css'], ['runsTable.css']], script: ['dist', 'runsTable.js'],
  });
}
