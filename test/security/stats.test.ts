import { describe, expect, it } from 'vitest';
import { erfc, median, quantile, wilcoxonSignedRank } from './support/stats.js';

// The timing test's statistic must be right before its verdict means anything. Reference values
// from SciPy 1.17 (scipy.stats.wilcoxon, method='asymptotic'); W+ from alternative='greater'.

const TIES_AND_ZEROS = [0, 2, -2, 3, 0, -1, 4, 4, -4, 5, 1, 0, 2, 6, -3, 7, 2, 8, 1, -1];
const NO_TIES = [1.83, -0.5, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.3, -0.9, 0.41, 2.2, -0.15, 0.77, 1.11];
const SHIFTED = Array.from({ length: 60 }, (_, i) => ((i * 37) % 101) / 10 - 3.0);

describe('wilcoxonSignedRank', () => {
  const cases = [
    ['ties and zeros, zeros dropped', TIES_AND_ZEROS, { zeroMethod: 'wilcox' }, 120, 33, 2.0664558486282845, 0.038785457202021936],
    ['ties and zeros, zeros dropped, continuity', TIES_AND_ZEROS, { zeroMethod: 'wilcox', continuity: true }, 120, 33, 2.0427034825520973, 0.04108179987781536],
    ['ties and zeros, Pratt', TIES_AND_ZEROS, { zeroMethod: 'pratt' }, 156, 48, 2.0253362653809033, 0.04283284707659755],
    ['ties and zeros, Pratt, continuity', TIES_AND_ZEROS, { zeroMethod: 'pratt', continuity: true }, 156, 48, 2.0065831518125616, 0.04479406676046756],
    ['no ties', NO_TIES, {}, 111, 9, 2.8966053546600303, 0.003772239574473987],
    ['no ties, continuity', NO_TIES, { continuity: true }, 111, 9, 2.868207262947677, 0.004128050101717348],
    ['60 values with ties and one zero', SHIFTED, {}, 1440.5, 329.5, 4.192975305374061, 2.7531942426216437e-5],
    ['60 values with ties and one zero, Pratt', SHIFTED, { zeroMethod: 'pratt' }, 1481.5, 347.5, 4.174127869682287, 2.99129722261568e-5],
  ] as const;

  for (const [name, data, options, wPlus, wMinus, z, p] of cases) {
    it(`matches SciPy: ${name}`, () => {
      const r = wilcoxonSignedRank(data, options);
      expect(r.wPlus).toBeCloseTo(wPlus, 9);
      expect(r.wMinus).toBeCloseTo(wMinus, 9);
      expect(r.z).toBeCloseTo(z, 9);
      expect(r.p / p).toBeCloseTo(1, 5);
    });
  }

  it('is antisymmetric: negating every difference negates z and keeps p', () => {
    const a = wilcoxonSignedRank(SHIFTED);
    const b = wilcoxonSignedRank(SHIFTED.map((d) => -d));
    expect(b.z).toBeCloseTo(-a.z, 12);
    expect(b.p).toBeCloseTo(a.p, 12);
  });

  it('gives p = 1 when every difference is zero, and counts the zeros', () => {
    expect(wilcoxonSignedRank([0, 0, 0])).toEqual({ n: 0, zeros: 3, wPlus: 0, wMinus: 0, z: 0, p: 1 });
  });

  it('finds a 1-unit shift in 400 noisy pairs far beyond p < 0.001', () => {
    const noise = (i: number): number => Math.sin(i * 12.9898) * 0.3;
    expect(wilcoxonSignedRank(Array.from({ length: 400 }, (_, i) => 1 + noise(i))).p).toBeLessThan(1e-30);
  });
});

describe('erfc', () => {
  it('matches known values in the body and far in the tail', () => {
    expect(erfc(0)).toBeCloseTo(1, 7);
    expect(erfc(1) / 0.15729920705028513).toBeCloseTo(1, 6);
    expect(erfc(-1) / 1.8427007929497148).toBeCloseTo(1, 6);
    expect(erfc(5) / 1.5374597944280349e-12).toBeCloseTo(1, 6);
    expect(erfc(10) / 2.088487583762545e-45).toBeCloseTo(1, 6);
  });
});

describe('quantile', () => {
  it('interpolates between order statistics like NumPy', () => {
    expect(quantile([4, 1, 3, 2], 0.1)).toBeCloseTo(1.3, 12);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5, 1, 3])).toBe(3);
  });
});
