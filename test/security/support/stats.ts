/**
 * The statistics of the timing test: the Wilcoxon signed-rank test for paired samples with the
 * normal approximation (average ranks for ties, the tie correction of the variance, zeros dropped
 * as Wilcoxon did or kept in the ranking as Pratt did), and quantiles. Checked against SciPy in
 * stats.test.ts.
 */

export interface WilcoxonResult {
  /** differences that took part (zeros excluded) */
  n: number;
  zeros: number;
  /** sum of the ranks of the positive differences */
  wPlus: number;
  wMinus: number;
  z: number;
  /** two-sided */
  p: number;
}

export interface WilcoxonOptions {
  /** 'wilcox' (default): zeros are dropped before ranking; 'pratt': zeros are ranked, then dropped */
  zeroMethod?: 'wilcox' | 'pratt';
  /** subtract 0.5 from |W+ − mean| (default false) */
  continuity?: boolean;
}

export function wilcoxonSignedRank(differences: readonly number[], options: WilcoxonOptions = {}): WilcoxonResult {
  const zeroMethod = options.zeroMethod ?? 'wilcox';
  const zeros = differences.filter((d) => d === 0).length;
  const ranked = zeroMethod === 'wilcox' ? differences.filter((d) => d !== 0) : [...differences];
  const { ranks, tieGroups } = averageRanks(ranked.map(Math.abs));

  let wPlus = 0;
  let wMinus = 0;
  ranked.forEach((d, i) => {
    if (d > 0) wPlus += ranks[i]!;
    else if (d < 0) wMinus += ranks[i]!;
  });

  const count = ranked.length;
  let mean = (count * (count + 1)) / 4;
  let variance24 = count * (count + 1) * (2 * count + 1);
  if (zeroMethod === 'pratt' && zeros > 0) {
    // Cureton (1967): the zeros' ranks are taken out of the null distribution.
    mean -= (zeros * (zeros + 1)) / 4;
    variance24 -= zeros * (zeros + 1) * (2 * zeros + 1);
  }
  // Tied absolute values share an average rank, which narrows the distribution of W+; the zeros'
  // own tie group is not a tie among the ranks that count.
  for (const group of tieGroups) {
    if (group.value === 0 && zeroMethod === 'pratt') continue;
    variance24 -= (group.size ** 3 - group.size) / 2;
  }
  const sd = Math.sqrt(variance24 / 24);
  const n = differences.length - zeros;
  if (n === 0 || sd === 0) return { n, zeros, wPlus, wMinus, z: 0, p: 1 };
  let deviation = wPlus - mean;
  if (options.continuity) deviation = Math.sign(deviation) * Math.max(0, Math.abs(deviation) - 0.5);
  const z = deviation / sd;
  return { n, zeros, wPlus, wMinus, z, p: Math.min(1, erfc(Math.abs(z) / Math.SQRT2)) };
}

/** 1-based average ranks of values, and each group of equal values. */
function averageRanks(values: readonly number[]): { ranks: number[]; tieGroups: { value: number; size: number }[] } {
  const order = values.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(values.length);
  const tieGroups: { value: number; size: number }[] = [];
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && order[end + 1]![0] === order[start]![0]) end++;
    const rank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) ranks[order[k]![1]] = rank;
    if (end > start) tieGroups.push({ value: order[start]![0], size: end - start + 1 });
    start = end + 1;
  }
  return { ranks, tieGroups };
}

/**
 * The complementary error function, with fractional error below 1.2e-7 everywhere (Numerical
 * Recipes' erfcc, a Chebyshev fit): accurate far into the tail, where p-values of 1e-30 live.
 */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const poly =
    -z * z -
    1.26551223 +
    t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const r = t * Math.exp(poly);
  return x >= 0 ? r : 2 - r;
}

/** The q-quantile (0 ≤ q ≤ 1) with linear interpolation between order statistics (NumPy's default). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);
