// The data views computed from a run's neighbour table (every image's k nearest by cosine):
//   label issues  images whose neighbours mostly carry another class folder, ranked by how many
//                 disagree, then by how close the disagreeing ones are (FiftyOne's mistakenness,
//                 cleanlab's idea: the model's view of an image contradicts its folder);
//   outliers      the most unique images: lowest mean cosine to their k nearest;
//   redundant     the most redundant ones: highest mean cosine to their k nearest.
// Pure functions of the table and the labels, so they are tested on crafted vectors.
import type { NeighbourTable } from '../retrieval/search';
import type { DataViewName } from '../protocol';

export interface RankedRow {
  row: number;
  /** labelIssues: share of the k neighbours in another class; outliers: 1 − mean cosine; redundant: mean cosine. */
  score: number;
  /** labelIssues: the class most of the disagreeing neighbours carry; otherwise null. */
  suggested: number | null;
}

function meanScore(table: NeighbourTable, row: number, k: number): number {
  let sum = 0;
  for (let j = 0; j < k; j++) sum += table.scores[row * table.k + j];
  return k ? sum / k : 0;
}

const usableK = (table: NeighbourTable, k: number) => Math.max(1, Math.min(k, table.k));

/**
 * Labelled images whose k nearest neighbours mostly (more than half) carry another label, most
 * disagreeing first; ties go to the image whose disagreeing neighbours are closer. Unlabelled
 * images and unlabelled neighbours take no part.
 */
export function labelIssues(table: NeighbourTable, labels: readonly (number | null)[], k: number, limit: number): RankedRow[] {
  const kk = usableK(table, k);
  const found: (RankedRow & { closeness: number })[] = [];
  for (let row = 0; row < table.count; row++) {
    const own = labels[row];
    if (own === null) continue;
    const votes = new Map<number, { count: number; score: number }>();
    let labelled = 0;
    let disagreeing = 0;
    let closeness = 0;
    for (let j = 0; j < kk; j++) {
      const other = labels[table.rows[row * table.k + j]];
      if (other === null) continue;
      labelled++;
      if (other === own) continue;
      const score = table.scores[row * table.k + j];
      disagreeing++;
      closeness += score;
      const vote = votes.get(other) ?? { count: 0, score: 0 };
      vote.count++;
      vote.score += score;
      votes.set(other, vote);
    }
    if (labelled === 0 || disagreeing * 2 <= labelled) continue;
    let suggested: number | null = null;
    let best = { count: -1, score: -Infinity };
    for (const [label, vote] of votes) {
      if (vote.count > best.count || (vote.count === best.count && vote.score > best.score)) {
        best = vote;
        suggested = label;
      }
    }
    found.push({ row, score: disagreeing / labelled, suggested, closeness: closeness / disagreeing });
  }
  found.sort((a, b) => b.score - a.score || b.closeness - a.closeness || a.row - b.row);
  return found.slice(0, limit).map(({ row, score, suggested }) => ({ row, score, suggested }));
}

/** The `limit` images farthest from their k nearest neighbours (lowest mean cosine), most unique first. */
export function outliers(table: NeighbourTable, k: number, limit: number): RankedRow[] {
  const kk = usableK(table, k);
  return rankBy(table.count, limit, (row) => 1 - meanScore(table, row, kk));
}

/** The `limit` images closest to their k nearest neighbours (highest mean cosine), most redundant first. */
export function redundant(table: NeighbourTable, k: number, limit: number): RankedRow[] {
  const kk = usableK(table, k);
  return rankBy(table.count, limit, (row) => meanScore(table, row, kk));
}

function rankBy(count: number, limit: number, score: (row: number) => number): RankedRow[] {
  const scores = Float64Array.from({ length: count }, (_, row) => score(row));
  return Array.from({ length: count }, (_, row) => row)
    .sort((a, b) => scores[b] - scores[a] || a - b)
    .slice(0, limit)
    .map((row) => ({ row, score: scores[row], suggested: null }));
}

export function dataView(name: DataViewName, table: NeighbourTable, labels: readonly (number | null)[], k: number, limit: number): RankedRow[] {
  switch (name) {
    case 'labelIssues':
      return labelIssues(table, labels, k, limit);
    case 'outliers':
      return outliers(table, k, limit);
    case 'redundant':
      return redundant(table, k, limit);
  }
}
