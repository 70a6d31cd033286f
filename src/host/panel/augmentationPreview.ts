// The panel's augmentation preview, host side: pairs of views of a few images of the run's
// folder, rendered by an engine process exactly as the trainer renders them
// (src/training/data/preview.ts), for the config the current settings resolve to, so a person
// sees what an augmentation setting does before training with it. Rendered when the webview first
// asks and again whenever a setting that changes the views changes; kept for webview reloads.
// The extension host never renders views itself: that is CPU work (and sharp) for the engine.
import * as path from 'path';
import * as vscode from 'vscode';
import { AUGMENTATION_FIELDS, type TrainConfig } from '../../training/config';
import type { PreviewResultFields } from '../../training/data/preview';
import { resolveTrainingConfig, SECTION, trainingDefaults } from '../settings';
import type { AugmentationPreviewMessage, ToWebviewMessage, WebviewMessageBody } from '../../webview/protocol';

/** The engine's `preview` request: src/training/data/preview.ts's PreviewOptions, as the protocol carries them. */
export interface PreviewRequestFields {
  folder: string;
  config: TrainConfig;
  runsDir?: string;
  images: number;
  pairs: number;
  epoch: number;
}

/** What renders the views: an engine process (RetrievalClient.preview once wired). */
export interface PreviewSource {
  preview(request: PreviewRequestFields, onProgress?: (p: { task: string; done: number; total: number }) => void): Promise<PreviewResultFields>;
}

interface PreviewContext {
  runDir: string;
  datasetRoot: string;
  /** The run's own config: the preview says when the settings differ from it. */
  runConfig: TrainConfig;
  source: PreviewSource | undefined;
  post(body: WebviewMessageBody<ToWebviewMessage>): void;
  warn(text: string): void;
}

const IMAGES = 4;
const PAIRS = 3;

/** The config fields that change which views the trainer renders (and where): the preview is rendered again when a setting of one changes. */
export const VIEW_FIELDS = ['imageSize', 'batchSize', 'seed', 'testFraction', ...AUGMENTATION_FIELDS] as const satisfies readonly (keyof TrainConfig)[];
const VIEW_SETTINGS = ['preset', 'imageSize', 'batchSize', ...AUGMENTATION_FIELDS].map((key) => `${SECTION}.${key}`);

/** The settings in words, as the preview's caption. */
export function viewSettingsText(config: TrainConfig): string {
  return `${config.preset} preset, ${config.imageSize} px, crop ${config.cropScaleMin}–${config.cropScaleMax} of the area, ` +
    `colour jitter ${config.colorJitter} (p ${config.colorJitterP}), grayscale p ${config.grayscaleP}, blur p ${config.blurP}, ` +
    `flip p ${config.flipP}; seed ${config.seed}, batch ${config.batchSize}`;
}

/** The view fields whose values differ between the settings and the run, e.g. "colorJitter 0.5 (run: 1)". */
export function viewDifferences(settings: TrainConfig, run: TrainConfig): string[] {
  return VIEW_FIELDS.filter((field) => settings[field] !== run[field]).map((field) => `${field} ${settings[field]} (this run: ${run[field]})`);
}

export class PanelAugmentationPreview implements vscode.Disposable {
  private shown: WebviewMessageBody<AugmentationPreviewMessage> | undefined;
  private epoch = 0;
  private work: Promise<unknown> = Promise.resolve();
  /** Renders asked for and not started yet: a burst of setting changes renders once. */
  private waiting = 0;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly context: PreviewContext) {
    this.disposables.push(vscode.workspace.onDidChangeConfiguration((event) => {
      const scope = vscode.Uri.file(context.datasetRoot);
      if (VIEW_SETTINGS.some((key) => event.affectsConfiguration(key, scope))) void this.render(this.epoch);
    }));
  }

  /** The webview (re)loaded: show the last views again, or render them. */
  restore(): void {
    if (this.shown) this.context.post(this.shown);
    else void this.render(this.epoch);
  }

  /** Renders the views from `epoch` on; resolves once they were posted (or the failure was). Queued. */
  render(epoch: number): Promise<void> {
    this.epoch = epoch;
    this.waiting += 1;
    const work = this.work.then(async () => {
      this.waiting -= 1;
      if (this.waiting === 0) await this.renderNow(this.epoch);
    });
    this.work = work.catch(() => undefined);
    return work;
  }

  private async renderNow(epoch: number): Promise<void> {
    const { post, source, runDir, datasetRoot, runConfig } = this.context;
    if (!source) {
      post({ type: 'augmentationPreviewError', message: 'This window cannot render the augmentation preview: its engine lacks the preview request.' });
      return;
    }
    let config: TrainConfig;
    try {
      const { preset, overrides } = trainingDefaults(vscode.Uri.file(datasetRoot));
      config = resolveTrainingConfig(preset, overrides);
    } catch (error) {
      post({ type: 'augmentationPreviewError', message: (error as Error).message });
      return;
    }
    post({ type: 'augmentationPreviewBusy', text: `Rendering views of epoch ${epoch} for the current settings…` });
    try {
      const result = await source.preview({ folder: datasetRoot, config, runsDir: path.dirname(runDir), images: IMAGES, pairs: PAIRS, epoch });
      const differences = viewDifferences(config, runConfig);
      this.shown = {
        type: 'augmentationPreview', size: result.size,
        settings: `Views as training renders them with the current settings: ${viewSettingsText(config)}.` +
          (differences.length ? ` This run trained with other values: ${differences.join(', ')}.` : ''),
        images: result.images.map((image) => ({ path: image.relPath, label: image.label, pairs: image.pairs })),
        notes: result.notes,
      };
      post(this.shown);
    } catch (error) {
      this.context.warn(`augmentation preview: ${(error as Error).message}`);
      post({ type: 'augmentationPreviewError', message: (error as Error).message });
    }
  }

  dispose(): void {
    this.disposables.splice(0).forEach((d) => d.dispose());
  }
}
