// The SimSiam log, with every message made printable first: log lines quote file and run names
// (and pass on the engine's own output), which may hold control or bidi characters that would
// reorder or hide what the line says. Line feeds stay (stack traces span lines). A wrapper, not a
// Proxy: VS Code hands out its channels frozen, and a Proxy may not change a frozen object's methods.
import type * as vscode from 'vscode';
import { printable } from '../training/printable';

const safe = (message: string) => printable(message, { lineBreaks: true });

export function printableLog(channel: vscode.LogOutputChannel): vscode.LogOutputChannel {
  return {
    get name() { return channel.name; },
    get logLevel() { return channel.logLevel; },
    onDidChangeLogLevel: channel.onDidChangeLogLevel,
    trace: (message, ...args) => channel.trace(safe(message), ...args),
    debug: (message, ...args) => channel.debug(safe(message), ...args),
    info: (message, ...args) => channel.info(safe(message), ...args),
    warn: (message, ...args) => channel.warn(safe(message), ...args),
    error: (error, ...args) => channel.error(typeof error === 'string' ? safe(error) : error, ...args),
    append: (value) => channel.append(safe(value)),
    appendLine: (value) => channel.appendLine(safe(value)),
    replace: (value) => channel.replace(safe(value)),
    clear: () => channel.clear(),
    // The deprecated (column, preserveFocus) form is passed on as it came.
    show: ((...args: unknown[]) => (channel.show as (...a: unknown[]) => void)(...args)) as vscode.LogOutputChannel['show'],
    hide: () => channel.hide(),
    dispose: () => channel.dispose(),
  };
}
