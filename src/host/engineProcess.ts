// The extension's handle on one forked engine process (dist/engineProcess.js). The extension host
// never loads tfjs: training, embedding and search run in this child and talk back only through
// the typed, versioned messages of src/training/protocol.ts, validated on receipt.
import { fork, type ChildProcess } from 'child_process';
import * as vscode from 'vscode';
import {
  message, parseEngineMessage, ProtocolError, type EngineMessage, type HostMessage, type MessageBody,
} from '../training/protocol';

export interface EngineLaunchOptions {
  /** Compiled engine entry (the bundle's dist/engineProcess.js). */
  script: string;
  /** Added to the inherited environment, e.g. SIMSIAM_WASM_DIR for the bundled wasm binaries. */
  env: Record<string, string>;
  log: vscode.LogOutputChannel;
  /** Prefix of this engine's lines in the log. */
  label: string;
}

export interface EngineExit { code: number | null; signal: NodeJS.Signals | null }

/** How long a disconnected engine gets to checkpoint and exit before it is killed. */
const EXIT_GRACE_MS = 30_000;

export class EngineProcess implements vscode.Disposable {
  private readonly child: ChildProcess;
  private readonly messages = new vscode.EventEmitter<EngineMessage>();
  private readonly exits = new vscode.EventEmitter<EngineExit>();
  private exitInfo: EngineExit | null = null;
  private killTimer: NodeJS.Timeout | undefined;

  /** Every valid message the engine sends, in order. */
  readonly onMessage = this.messages.event;
  /** Fires once, when the process is gone (normally or not). */
  readonly onExit = this.exits.event;

  constructor(private readonly options: EngineLaunchOptions) {
    this.child = fork(options.script, [], {
      env: { ...process.env, ...options.env },
      // Not the extension host's flags: under a debugger they hold an --inspect port the child would fight over.
      execArgv: [],
      // stdout/stderr carry tfjs' own notices and crash traces: they belong in the log.
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // Its own process group: when the window reloads or closes, the extension host's process
      // group is torn down at once; the engine must outlive that by the moment it takes to see the
      // IPC channel close, finish its step and checkpoint (then it exits by itself).
      detached: true,
    });
    const log = options.log;
    this.child.stdout?.on('data', (chunk: Buffer) => this.logLines(chunk, (line) => log.info(line)));
    this.child.stderr?.on('data', (chunk: Buffer) => this.logLines(chunk, (line) => log.warn(line)));
    this.child.on('message', (raw) => {
      let parsed: EngineMessage;
      try {
        parsed = parseEngineMessage(raw);
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        log.error(`[${options.label}] dropped an invalid engine message: ${error.message}`);
        return;
      }
      this.messages.fire(parsed);
    });
    this.child.on('error', (error) => log.error(`[${options.label}] engine process error: ${error.message}`));
    this.child.on('exit', (code, signal) => {
      clearTimeout(this.killTimer);
      this.exitInfo = { code, signal };
      log.info(`[${options.label}] engine process ${this.child.pid} exited (${signal ?? `code ${code}`})`);
      this.exits.fire(this.exitInfo);
      this.messages.dispose();
      this.exits.dispose();
    });
    log.info(`[${options.label}] engine process ${this.child.pid} started`);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get exited(): boolean {
    return this.exitInfo !== null;
  }

  send(body: MessageBody<HostMessage>): void {
    if (this.exited || !this.child.connected) {
      throw new Error(`The SimSiam engine (${this.options.label}) is no longer running.`);
    }
    this.child.send(message(body));
  }

  /** Asks a running train/resume to stop after its current step, with a checkpoint. */
  requestStop(): void {
    if (!this.exited && this.child.connected) this.child.send(message({ type: 'stop' }));
  }

  /**
   * Disconnects: the engine finishes (a training run stops with a checkpoint) and exits. A child
   * that does not exit within the grace period is killed.
   */
  dispose(): void {
    if (this.exited) return;
    if (this.child.connected) this.child.disconnect();
    this.killTimer ??= setTimeout(() => this.child.kill('SIGKILL'), EXIT_GRACE_MS);
  }

  private logLines(chunk: Buffer, write: (line: string) => void): void {
    for (const line of chunk.toString().split('\n')) {
      if (line.trim()) write(`[${this.options.label}] ${line}`);
    }
  }
}
