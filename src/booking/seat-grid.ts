/** Row labels run A..Z, then AA, AB, ... like spreadsheet columns. `index` is zero-based. */
export function rowLabel(index: number): string {
  let label = "";
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) {
    label = String.fromCharCode(65 + ((n - 1) % 26)) + label;
  }
  return label;
}

export const MAX_SEATS_PER_SESSION = 10_000;
