// The CLI's data-view and map commands (registered on cli.ts's program): label-issues, outliers,
// redundant and map, each printing a list for people or, with --json, one JSON document. Near-
// duplicates are `simsiam duplicates` (cli.ts). Every name printed goes through printable().
import * as fs from 'fs';
import * as path from 'path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { MAP_METHODS, type DataViewName, type DataViewItem, type Emit } from '../protocol';
import { printable, printableJson } from '../printable';
import { humanReporter } from '../cli';
import { computeDataView, DEFAULT_VIEW_K, DEFAULT_VIEW_LIMIT } from './service';
import { embeddingMap } from '../projection/mapService';

/** What the commands print to: cli.ts's Outputs. */
export interface DataViewCliIo {
  out: { line(text: string): void };
  err: { stream: NodeJS.WriteStream };
}

const positiveInt = (name: string, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}.`);
  return n;
};

const VIEWS: { name: DataViewName; command: string; description: string; score: (item: DataViewItem, k: number) => string }[] = [
  {
    name: 'labelIssues', command: 'label-issues',
    description: 'possible label issues: images whose nearest neighbours mostly carry another class folder, most disagreeing first',
    score: (item, k) => `${Math.round(item.score * k)}/${k} neighbours in another class${item.suggested === null ? '' : `, mostly ${printable(item.suggested)}`}`,
  },
  {
    name: 'outliers', command: 'outliers',
    description: 'the most unique images: farthest from their k nearest neighbours (lowest mean cosine), most unique first',
    score: (item) => `uniqueness ${item.score.toFixed(4)} (1 − mean cosine)`,
  },
  {
    name: 'redundant', command: 'redundant',
    description: 'the most redundant images: closest to their k nearest neighbours (highest mean cosine), most redundant first',
    score: (item) => `mean cosine ${item.score.toFixed(4)}`,
  },
];

function quietOr(io: DataViewCliIo, json: boolean): Emit {
  return json ? () => undefined : humanReporter(io.err.stream);
}

function csvField(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function registerDataViewCommands(program: Command, io: DataViewCliIo): void {
  for (const view of VIEWS) {
    program.command(view.command)
      .description(view.description)
      .argument('<run>', 'run folder')
      .option('-k <n>', 'neighbours each image is compared with', positiveInt('-k', 100), DEFAULT_VIEW_K)
      .option('--limit <n>', 'images listed at most', positiveInt('--limit', 10_000), DEFAULT_VIEW_LIMIT)
      .option('--json', 'print the result as JSON')
      .action(async (run: string, o) => {
        const result = await computeDataView(path.resolve(run), view.name, o.k, o.limit, quietOr(io, o.json));
        if (o.json) {
          io.out.line(printableJson({ view: result.view, k: result.k, checkpointStep: result.checkpointStep, items: result.items }));
          return;
        }
        if (!result.items.length) io.out.line(`no images found (checkpoint of step ${result.checkpointStep}, k = ${result.k})`);
        result.items.forEach((item, i) => io.out.line(`${i + 1}. ${printable(item.path)}  [${item.label === null ? 'no class' : printable(item.label)}]  ${view.score(item, result.k)}`));
      });
  }

  program.command('map')
    .description('the 2-D embedding map of a run (PCA, or UMAP cached per checkpoint in <run>/map/): CSV of path, class, split, x, y')
    .argument('<run>', 'run folder')
    .addOption(new Option('--method <method>', 'layout').choices([...MAP_METHODS]).default('umap'))
    .option('--out <file>', 'CSV file to write (default <run>/map/<method>.csv)')
    .option('--json', 'print the map as JSON instead of writing a CSV')
    .action(async (run: string, o) => {
      const map = await embeddingMap(path.resolve(run), o.method, quietOr(io, o.json));
      const className = (i: number) => (map.labels[i] === null ? null : map.classes[map.labels[i]!]);
      if (o.json) {
        io.out.line(printableJson({
          method: map.method, checkpointStep: map.checkpointStep, cached: map.cached, datasetRoot: map.datasetRoot,
          points: map.paths.map((relPath, i) => ({ path: relPath, label: className(i), split: map.splits[i], x: map.x[i], y: map.y[i] })),
        }));
        return;
      }
      const file = path.resolve(o.out ?? path.join(map.runDir, 'map', `${map.method}.csv`));
      const lines = ['path,label,split,x,y', ...map.paths.map((relPath, i) =>
        [csvField(relPath), csvField(className(i) ?? ''), map.splits[i], map.x[i], map.y[i]].join(','))];
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, lines.join('\n') + '\n');
      io.out.line(`wrote ${printable(file)}: ${map.paths.length} images, ${map.method.toUpperCase()} of the checkpoint of step ${map.checkpointStep}${map.cached ? ' (cached)' : ''}`);
    });
}
