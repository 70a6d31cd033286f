import * as assert from 'assert';
import type * as vscode from 'vscode';
import { printableLog } from '../../src/host/printableLog';

describe('the SimSiam log', () => {
  it('writes names with control and bidi characters escaped, keeping line feeds and everything else the channel does', () => {
    const written: string[] = [];
    let shown = false;
    // Frozen, as VS Code hands out its channels.
    const channel = Object.freeze({
      name: 'SimSiam',
      info(message: string) { written.push(`info ${message}`); },
      error(error: string | Error) { written.push(`error ${String(error)}`); },
      show() { shown = true; },
    }) as unknown as vscode.LogOutputChannel;
    const log = printableLog(channel);
    log.info('skipped /data/cls\u001b]0;pwned\u0007/photo\u202e1.png\nat line 2');
    log.error(new Error('kept as it is'));
    log.show();
    assert.deepStrictEqual(written, ['info skipped /data/cls\\x1b]0;pwned\\x07/photo\\u202e1.png\nat line 2', 'error Error: kept as it is']);
    assert.ok(shown);
    assert.strictEqual(log.name, 'SimSiam');
  });
});
