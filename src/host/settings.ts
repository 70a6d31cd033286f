// The extension's settings (package.json "contributes.configuration"), read in one place and
// turned into what the engine understands: a preset name plus TrainConfig overrides.
import * as path from 'path';
import * as vscode from 'vscode';
import { AUGMENTATION_FIELDS, ConfigError, PRESETS, resolveConfig, type PresetName, type TrainConfig } from '../training/config';

export const SECTION = 'simsiam';

export interface TrainingDefaults {
  preset: PresetName;
  /** Only the fields the user set; the preset supplies the rest. */
  overrides: Record<string, unknown>;
}

/** Engine config fields that come from settings, each from the setting of the same name. */
const SETTING_FIELDS = [
  'epochs', 'batchSize', 'imageSize', 'maxCachedImages', 'backend', ...AUGMENTATION_FIELDS,
] as const satisfies readonly (keyof TrainConfig)[];

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
  // Only what the user set is passed on (empty, null, means "the preset's"), as set, so that an
  // invalid value is reported (resolveTrainingConfig) instead of silently replaced.
  const overrides: Record<string, unknown> = {};
  for (const field of SETTING_FIELDS) {
    const value = setByUser(config, field) ? config.get<unknown>(field) : undefined;
    if (value !== undefined && value !== null) overrides[field] = value;
  }
  if (overrides.backend === 'auto') delete overrides.backend;
  return { preset: isPreset(preset) ? preset : 'tiny', overrides };
}

/** The setting that sets a config field, e.g. simsiam.batchSize for batchSize; undefined for fields no setting sets. */
export function settingOf(field: string): string | undefined {
  return (SETTING_FIELDS as readonly string[]).includes(field) ? `${SECTION}.${field}` : undefined;
}

/** Thrown when the settings do not make a valid config; the message names the settings to fix. */
export class SettingsError extends Error {}

/**
 * The run's config, resolved once from the preset and the settings with the engine's own rules
 * (config.ts, no tfjs), before a process is started. A problem names the offending settings.
 */
export function resolveTrainingConfig(preset: PresetName, overrides: Record<string, unknown>): TrainConfig {
  try {
    return resolveConfig(preset, overrides);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const settings = [...new Set(error.problems.flatMap((p) => settingOf(p.field) ?? []))];
    throw new SettingsError(settings.length ? `${error.message} Fix ${settings.join(', ')} in Settings.` : error.message);
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
