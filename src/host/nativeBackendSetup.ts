// "SimSiam: Set Up Native Backend": asks for tfjs-node (CPU) or tfjs-node-gpu (CUDA), installs it
// with the user's npm into <globalStorage>/backends (the .vsix cannot carry TensorFlow's native
// libraries), shows npm's output in the SimSiam log, checks the result in a child process and says
// which backend training will use. The engine finds the folder through SIMSIAM_BACKENDS_DIR, which
// extension.ts passes to every engine it launches.
import * as path from 'path';
import * as vscode from 'vscode';
import { showError, showInformation, showWarning } from './notify';
import { SECTION } from './settings';
import {
  exactVersion, installNativeBackend, NATIVE_PACKAGES, type InstallResult, type NativeVariant,
} from './nativeBackendInstaller';

/** <globalStorage>/backends: outside the extension's folder, so that it survives updates of the extension. */
export function backendsDir(context: vscode.ExtensionContext): string {
  return path.join(context.globalStorageUri.fsPath, 'backends');
}

/** What the command resolves to: the installer's result, the folder, and what the notification said. */
export type SetupOutcome = InstallResult & { backendsDir: string; message: string };

interface VariantPick extends vscode.QuickPickItem { variant: NativeVariant }

async function pickVariant(): Promise<NativeVariant | undefined> {
  const items: VariantPick[] = [
    {
      variant: 'node', label: 'CPU: tfjs-node',
      description: 'TensorFlow on the CPU', detail: 'Faster than wasm on most CPUs. Downloads libtensorflow (about 100 MB).',
    },
  ];
  // CUDA exists on Linux and Windows only; a Mac's GPU is reached through the WebGPU backend.
  if (process.platform !== 'darwin') {
    items.push({
      variant: 'node-gpu', label: 'NVIDIA GPU: tfjs-node-gpu',
      description: 'TensorFlow with CUDA',
      detail: 'Needs an NVIDIA driver with CUDA 11.2 and cuDNN 8.1 installed. Downloads libtensorflow (about 400 MB).',
    });
  }
  const picked = await vscode.window.showQuickPick(items, { title: 'SimSiam: Set Up Native Backend', placeHolder: 'Which TensorFlow backend to install?' });
  return picked?.variant;
}

/** The engine bundles tfjs; the manifest's dependency range says which version (the package must match it exactly). */
function engineTfjsVersion(context: vscode.ExtensionContext): string | undefined {
  const manifest = context.extension.packageJSON as { dependencies?: Record<string, string> };
  return exactVersion(manifest.dependencies?.['@tensorflow/tfjs']);
}

/** What training will use after this result, given the backend setting. */
function trainingUses(result: InstallResult, variant: NativeVariant): string {
  const setting = vscode.workspace.getConfiguration(SECTION).get<string>('backend') ?? 'auto';
  const { shortName } = NATIVE_PACKAGES[variant];
  const usable = result.ok && !(variant === 'node-gpu' && result.verified.gpu === false);
  if (usable) {
    return setting === 'auto' || setting === variant ? ''
      : ` Your ${SECTION}.backend setting is "${setting}": set it to "auto" or "${variant}" to train on ${shortName}.`;
  }
  if (setting === variant) {
    return ` Your ${SECTION}.backend setting asks for "${variant}", so training will fail until this is fixed: set it to "auto" to train on the next backend meanwhile.`;
  }
  return setting === 'auto' ? ' Training goes on with the next backend that loads (WebGPU where a GPU adapter exists, else wasm).' : '';
}

/**
 * Runs the command. `variant` skips the question (tests, and a future "install" button); resolves
 * to the outcome, or undefined when the person dismissed the question.
 */
export async function setUpNativeBackend(context: vscode.ExtensionContext, log: vscode.LogOutputChannel,
  variant?: NativeVariant): Promise<SetupOutcome | undefined> {
  const chosen = variant ?? await pickVariant();
  if (chosen === undefined) return undefined;
  const { packageName, shortName } = NATIVE_PACKAGES[chosen];
  const tfjsVersion = engineTfjsVersion(context);
  if (tfjsVersion === undefined) {
    void showError(`SimSiam: cannot tell which ${packageName} version matches this extension's tfjs (package.json names none): reinstall SimSiam Lab.`);
    return undefined;
  }
  const dir = backendsDir(context);
  log.info(`[setup] installing ${packageName}@${tfjsVersion} into ${dir}`);
  const result = await vscode.window.withProgress({
    location: vscode.ProgressLocation.Notification, title: `SimSiam: setting up ${shortName}`, cancellable: true,
  }, (progress, token) => {
    const abort = new AbortController();
    token.onCancellationRequested(() => abort.abort());
    return installNativeBackend({
      variant: chosen, backendsDir: dir, tfjsVersion, signal: abort.signal,
      onOutput: (line) => log.info(`[setup] ${line}`),
      onStep: (step) => progress.report({ message: step }),
    });
  });
  const message = `SimSiam: ${result.summary}${trainingUses(result, chosen)}`;
  if (result.ok) log.info(`[setup] ${message}`);
  else log.warn(`[setup] ${message}`);
  if (!result.ok && result.step === 'cancelled') {
    void showInformation(message);
  } else if (!result.ok || (chosen === 'node-gpu' && result.verified.gpu === false)) {
    const show = result.ok ? showWarning : showError;
    void show(message, 'Show Log').then((choice) => { if (choice === 'Show Log') log.show(); });
  } else {
    void showInformation(message);
  }
  return { ...result, backendsDir: dir, message };
}
