// Entry point of the engine child process (child_process.fork). It answers host messages one at a
// time — train, resume, embed, similar, map, dataView, duplicates — and a stop request at any time. It exits when the host
// disconnects. Every failure reaches the host as an `error` message with its cause, never silence.
import { parseHostMessage, message, ProtocolError, type EngineMessage, type HostMessage } from './protocol';
import { StopSignal, startTraining, resumeTraining, StoppedBeforeStart, TrainingError } from './trainer';
import { exportEmbeddings, handleRetrievalRequest } from './retrieval/service';
import { exportProjector } from './retrieval/projectorExport';
import { previewResultFields, renderPreview } from './data/preview';
import { embeddingMap } from './projection/mapService';
import { computeDataView, computeDuplicates } from './dataViews/service';
import { collectEnvironment, formatEnvironment } from './doctor/environment';
import { BACKEND_CHOICES } from './config';
import { evaluateRun } from './evaluation/evaluateRun';

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
    case 'similarToMean':
      await handleRetrievalRequest(request, send);
      break;
    case 'preview':
      send(message({ type: 'previewResult', ...previewResultFields(await renderPreview(request)) }));
      break;
    case 'map':
      send(message(await embeddingMap(request.runDir, request.method, send)));
      break;
    case 'dataView':
      send(message(await computeDataView(request.runDir, request.view, request.k, request.limit, send)));
      break;
    case 'duplicates':
      send(message(await computeDuplicates(request.runDir, request.threshold, send)));
      break;
    case 'export': {
      const files = request.format === 'projector'
        ? await exportProjector(request.runDir, request.out, send)
        : await exportEmbeddings(request.runDir, request.format, request.out, send);
      send(message({ type: 'exportResult', runDir: request.runDir, files }));
      break;
    }
    case 'evaluate':
      await evaluateRun(request.runDir, request.step, send);
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
