// The extension's settings (package.json "contributes.configuration"), read in one place and
// turned into what the engine understands: a preset name plus TrainConfig overrides.
import * as path from 'path';
import * as vscode from 'vscode';
import { PRESETS, type PresetName } from '../training/config';

export const SECTION = 'simsiam';

export interface TrainingDefaults {
  preset: PresetName;
  /** Only the fields the user set; the preset supplies the rest. */
  overrides: Record<string, unknown>;
}

function isPreset(value: unknown): value is PresetName {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(PRESETS, value);
}

/** True when the user (or workspace) set the key, as opposed to the manifest default applying. */
function setByUser(config: vscode.WorkspaceConfiguration, key: string): boolean {
  const inspected = config.inspect(key);
  return [inspected?.globalValue, inspected?.workspaceValue, inspected?.workspaceFolderValue].some((v) => v !== undefined);
}

export function trainingDefaults(scope?: vscode.Uri): TrainingDefaults {
  const config = vscode.workspace.getConfiguration(SECTION, scope);
  const preset = config.get<string>('preset');
  const positive = (key: string): number | undefined => {
    const value = config.get<number | null>(key);
    return typeof value === 'number' && value > 0 ? value : undefined;
  };
  const overrides: Record<string, unknown> = {
    epochs: positive('epochs'),
    batchSize: positive('batchSize'),
    imageSize: positive('imageSize'),
    maxCachedImages: setByUser(config, 'maxCachedImages') ? config.get<number>('maxCachedImages') : undefined,
  };
  const backend = config.get<string>('backend');
  if (backend && backend !== 'auto') overrides.backend = backend;
  for (const key of Object.keys(overrides)) if (overrides[key] === undefined) delete overrides[key];
  return { preset: isPreset(preset) ? preset : 'tiny', overrides };
}

/**
 * The configured parent folder for new runs, or undefined for the default <dataset>/.simsiam/runs.
 * A relative setting is taken relative to the first workspace folder.
 */
export function configuredRunsFolder(scope?: vscode.Uri): string | undefined {
  const value = vscode.workspace.getConfiguration(SECTION, scope).get<string>('runsFolder')?.trim();
  if (!value) return undefined;
  if (path.isAbsolute(value)) return path.normalize(value);
  const base = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  return base ? path.resolve(base, value) : undefined;
}

export function topK(): number {
  const value = vscode.workspace.getConfiguration(SECTION).get<number>('topK') ?? 12;
  return Math.min(100, Math.max(1, Math.round(value)));
}
