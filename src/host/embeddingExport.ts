// "SimSiam: Export Embeddings": a run's embeddings for other tools, written by the search engine
// (which first indexes what is new): .npy with its paths file and CSV for Python, or a TensorBoard
// projector folder (docs/PYTHON.md says how to read each).
import * as path from 'path';
import * as vscode from 'vscode';
import type { ExportRequest } from '../training/protocol';
import type { RetrievalClient } from './retrieval';
import { showError, showInformation } from './notify';

const FORMATS: { label: string; description: string; format: ExportRequest['format']; target: string }[] = [
  { label: 'NumPy (.npy + paths)', description: 'np.load, with a JSON list of the image paths beside it', format: 'npy', target: 'embeddings.npy' },
  { label: 'CSV', description: 'one row per image: path, then the features', format: 'csv', target: 'embeddings.csv' },
  { label: 'TensorBoard projector', description: 'a folder for tensorboard --logdir: vectors, classes, thumbnails', format: 'projector', target: 'projector' },
];

export class EmbeddingExport {
  constructor(private readonly retrieval: RetrievalClient) {}

  /** Asks for the format and the target, writes, and offers to reveal the result; resolves to the files written. */
  async run(runDir: string, name: string, format?: ExportRequest['format'], out?: string): Promise<string[] | undefined> {
    const choice = format ? FORMATS.find((f) => f.format === format) : await vscode.window.showQuickPick(FORMATS, { placeHolder: `Export the embeddings of ${name} as` });
    if (!choice) return undefined;
    const target = out ?? (await vscode.window.showSaveDialog({
      defaultUri: vscode.Uri.file(path.join(runDir, choice.target)),
      title: choice.format === 'projector' ? 'Folder to write the projector files into' : `File to write the ${choice.label} export to`,
      ...(choice.format === 'projector' ? {} : { filters: { [choice.label]: [choice.format] } }),
    }))?.fsPath;
    if (!target) return undefined;
    try {
      const files = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `SimSiam: exporting ${name}` },
        (progress) => this.retrieval.export(runDir, choice.format, target, (p) => progress.report({ message: `${p.task} ${p.done}/${p.total}` })));
      void this.offer(files, choice.format === 'projector' ? target : undefined);
      return files;
    } catch (error) {
      void showError(`SimSiam: could not export ${name}: ${(error as Error).message}`);
      return undefined;
    }
  }

  private async offer(files: string[], projectorFolder: string | undefined): Promise<void> {
    const reveal = 'Reveal';
    const copy = 'Copy TensorBoard Command';
    const answer = await showInformation(`SimSiam: wrote ${files.map((f) => path.basename(f)).join(', ')}`,
      reveal, ...(projectorFolder ? [copy] : []));
    if (answer === reveal) void vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(files[0]));
    if (answer === copy && projectorFolder) void vscode.env.clipboard.writeText(`tensorboard --logdir "${projectorFolder}"`);
  }
}
