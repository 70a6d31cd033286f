// Entry point of the engine child process (child_process.fork). It answers host messages one at a
// time — train, resume, embed, similar — and a stop request at any time. It exits when the host
// disconnects. Every failure reaches the host as an `error` message with its cause, never silence.
import { parseHostMessage, message, ProtocolError, type EngineMessage, type HostMessage } from './protocol';
import { StopSignal, startTraining, resumeTraining, StoppedBeforeStart, TrainingError } from './trainer';
import { handleRetrievalRequest } from './retrieval/service';
import { collectEnvironment, formatEnvironment } from './doctor/environment';
import { BACKEND_CHOICES } from './config';

/**
 * Messages to a host that is gone are dropped, and the run stops: when the window reloads, the
 * channel can break (EPIPE) before 'disconnect' fires, and a throwing send would end the process
 * without its checkpoint.
 */
function send(msg: EngineMessage): void {
  if (!process.connected) return;
  process.send?.(msg, undefined, undefined, (error: Error | null) => {
    if (error) stop.request();
  });
}

function reportError(error: unknown): void {
  if (error instanceof StoppedBeforeStart) {
    send(message({ type: 'cancelled', message: error.message }));
    return;
  }
  const err = error instanceof Error ? error : new Error(String(error));
  const field = error instanceof TrainingError ? error.field : undefined;
  send(message({ type: 'error', message: err.message, detail: err.stack, ...(field ? { field } : {}) }));
}

let stop = new StopSignal();
let queue: Promise<void> = Promise.resolve();

async function handle(request: HostMessage): Promise<void> {
  switch (request.type) {
    case 'train':
      await startTraining(request, send, stop);
      break;
    case 'resume':
      await resumeTraining(request, send, stop);
      break;
    case 'embed':
    case 'similar':
      await handleRetrievalRequest(request, send);
      break;
    case 'environment': {
      let done = 0;
      const report = await collectEnvironment(() => {
        send(message({ type: 'progress', task: 'check backends', done: ++done, total: BACKEND_CHOICES.length }));
      });
      send(message({ type: 'environment', lines: formatEnvironment(report), backends: report.backends }));
      break;
    }
    case 'stop':
      break; // handled on receipt, so it can interrupt a running request
  }
}

process.on('message', (raw) => {
  let request: HostMessage;
  try {
    request = parseHostMessage(raw);
  } catch (error) {
    if (error instanceof ProtocolError) {
      send(message({ type: 'warning', message: `Ignored an invalid request: ${error.message}` }));
      return;
    }
    throw error;
  }
  if (request.type === 'stop') {
    stop.request();
    return;
  }
  queue = queue.then(async () => {
    stop = new StopSignal();
    try {
      await handle(request);
    } catch (error) {
      reportError(error);
    }
  });
});

// Stop gracefully on SIGTERM/SIGINT (window closed, system shutdown): checkpoint, then exit.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    stop.request();
    void queue.then(() => process.exit(0));
  });
}

process.on('disconnect', () => {
  stop.request();
  void queue.then(() => process.exit(0));
});

process.on('uncaughtException', (error) => {
  reportError(error);
  process.exit(1);
});
process.on('unhandledRejection', (error) => {
  reportError(error);
  process.exit(1);
});
