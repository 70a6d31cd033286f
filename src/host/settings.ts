// The extension's settings (package.json "contributes.configuration"), read in one place and
// turned into what the engine understands: a preset name plus TrainConfig overrides.
import * as path from 'path';
import * as vscode from 'vscode';
import { PRESETS, resolveConfig, type PresetName } from '../training/config';

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
  // Empty (null) means "the preset's"; anything else is passed on as set, so that an invalid
  // value is reported (checkTrainingSettings) instead of silently replaced.
  const setting = (key: string): unknown => config.get<unknown>(key) ?? undefined;
  const overrides: Record<string, unknown> = {
    epochs: setting('epochs'),
    batchSize: setting('batchSize'),
    imageSize: setting('imageSize'),
    maxCachedImages: setByUser(config, 'maxCachedImages') ? config.get<number>('maxCachedImages') : undefined,
  };
  const backend = config.get<string>('backend');
  if (backend && backend !== 'auto') overrides.backend = backend;
  for (const key of Object.keys(overrides)) if (overrides[key] === undefined) delete overrides[key];
  return { preset: isPreset(preset) ? preset : 'tiny', overrides };
}

/** Engine config fields that come from settings, and the setting each comes from. */
const SETTING_OF_FIELD: Record<string, string> = {
  epochs: 'simsiam.epochs', batchSize: 'simsiam.batchSize', imageSize: 'simsiam.imageSize',
  maxCachedImages: 'simsiam.maxCachedImages', backend: 'simsiam.backend',
};

/**
 * Checks the training settings with the engine's own validation (config.ts, no tfjs), before a
 * process is started; returns a message naming the offending settings, or undefined.
 */
export function checkTrainingSettings(preset: PresetName, overrides: Record<string, unknown>): string | undefined {
  try {
    resolveConfig(preset, overrides);
    return undefined;
  } catch (error) {
    const message = (error as Error).message;
    const settings = Object.entries(SETTING_OF_FIELD).filter(([field]) => message.includes(`${field} must be`)).map(([, key]) => key);
    return settings.length ? `${message} Fix ${settings.join(', ')} in Settings.` : message;
  }
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
