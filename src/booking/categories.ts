import { rowLabel } from "./seat-grid.ts";

/**
 * Price categories of a session: each covers whole rows and/or seat ranges of the grid. One
 * category may cover nothing explicitly: it takes every seat no other category names. Without any
 * category the session has one, "standard", at its price.
 */
export type CategoryInput = {
  key: string;
  name: string;
  price: number;
  /** Row labels ("A", "B", ...). */
  rows?: string[];
  /** Seat labels ("C5") or ranges within one row ("C1-C8"). */
  seats?: string[];
};

export type Grid = { rowsCount: number; seatsPerRow: number };

export const DEFAULT_CATEGORY = { key: "standard", name: "Standard" } as const;

/**
 * The category of every seat, by position - 1 (row by row, seat by seat), as indexes into
 * `categories`; or the first reason the categories do not price the grid exactly once per seat.
 */
export function assignCategories(
  grid: Grid,
  categories: readonly CategoryInput[],
): { ok: true; seatCategory: Int32Array } | { ok: false; message: string } {
  const { rowsCount, seatsPerRow } = grid;
  const rowIndex = new Map(Array.from({ length: rowsCount }, (_, index) => [rowLabel(index), index]));
  const seatCategory = new Int32Array(rowsCount * seatsPerRow).fill(-1);
  const keys = new Set<string>();
  let rest: number | undefined;
  const cover = (category: number, position: number, label: string): string | undefined => {
    const other = seatCategory[position] as number;
    if (other >= 0 && other !== category) {
      return `seat ${label} is in both ${categories[other]?.key} and ${categories[category]?.key}`;
    }
    seatCategory[position] = category;
    return undefined;
  };
  for (const [index, category] of categories.entries()) {
    if (keys.has(category.key)) return { ok: false, message: `category ${category.key} is given twice` };
    keys.add(category.key);
    if (!category.rows?.length && !category.seats?.length) {
      if (rest !== undefined) {
        return {
          ok: false,
          message: `only one category may leave out rows and seats (${categories[rest]?.key} and ${category.key} do)`,
        };
      }
      rest = index;
      continue;
    }
    for (const row of category.rows ?? []) {
      const r = rowIndex.get(row);
      if (r === undefined) return { ok: false, message: `category ${category.key}: there is no row ${row}` };
      for (let n = 1; n <= seatsPerRow; n++) {
        const clash = cover(index, r * seatsPerRow + n - 1, `${row}${n}`);
        if (clash) return { ok: false, message: clash };
      }
    }
    for (const range of category.seats ?? []) {
      const parsed = parseRange(range);
      const r = parsed && rowIndex.get(parsed.row);
      if (
        !parsed ||
        r === undefined ||
        parsed.from < 1 ||
        parsed.to > seatsPerRow ||
        parsed.from > parsed.to
      ) {
        return {
          ok: false,
          message: `category ${category.key}: ${range} is not a seat or seat range of this grid`,
        };
      }
      for (let n = parsed.from; n <= parsed.to; n++) {
        const clash = cover(index, r * seatsPerRow + n - 1, `${parsed.row}${n}`);
        if (clash) return { ok: false, message: clash };
      }
    }
  }
  for (const [position, category] of seatCategory.entries()) {
    if (category >= 0) continue;
    if (rest === undefined) {
      const label = `${rowLabel(Math.floor(position / seatsPerRow))}${(position % seatsPerRow) + 1}`;
      return {
        ok: false,
        message: `seat ${label} has no category (name it, or give one category no rows or seats)`,
      };
    }
    seatCategory[position] = rest;
  }
  return { ok: true, seatCategory };
}

/** "C5" or "C1-C8" (a range within one row; "C1-8" too). */
function parseRange(text: string): { row: string; from: number; to: number } | undefined {
  const match = /^([A-Z]+)(\d{1,5})(?:-(?:([A-Z]+))?(\d{1,5}))?$/.exec(text);
  if (!match) return undefined;
  const [, row, from, toRow, to] = match;
  if (toRow !== undefined && toRow !== row) return undefined;
  return { row: row as string, from: Number(from), to: Number(to ?? from) };
}
