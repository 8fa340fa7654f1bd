/** Money is integer cents inside; the API shows and accepts decimal amounts with at most two decimals. */

export function toCents(amount: number): number {
  return Math.round(amount * 100);
}

export function hasAtMostTwoDecimals(amount: number): boolean {
  return Math.abs(toCents(amount) - amount * 100) < 1e-6;
}

export function fromCents(cents: number): number {
  return cents / 100;
}
