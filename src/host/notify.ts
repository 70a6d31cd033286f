// Notifications with text that names files and runs. Names come from the disk, so they may hold
// control or bidi characters (shown escaped, see src/training/printable.ts) and, worse, Markdown
// link syntax: VS Code turns `[text](command:…)` in a notification into a link that runs the
// command. Brackets in the text are shown as their full-width forms, which link nothing.
import * as vscode from 'vscode';
import { printable } from '../training/printable';

export function shown(text: string): string {
  return printable(text).replace(/\[/g, '［').replace(/\]/g, '］');
}

type Rest = (string | vscode.MessageOptions)[];

function safe(rest: Rest): Rest {
  return rest.map((item) => (typeof item === 'object' && item.detail !== undefined ? { ...item, detail: shown(item.detail) } : item));
}

export function showInformation(message: string, ...rest: Rest): Thenable<string | undefined> {
  return vscode.window.showInformationMessage(shown(message), ...(safe(rest) as string[]));
}

export function showWarning(message: string, ...rest: Rest): Thenable<string | undefined> {
  return vscode.window.showWarningMessage(shown(message), ...(safe(rest) as string[]));
}

export function showError(message: string, ...rest: Rest): Thenable<string | undefined> {
  return vscode.window.showErrorMessage(shown(message), ...(safe(rest) as string[]));
}
