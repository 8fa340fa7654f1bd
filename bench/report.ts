import type { ScenarioResult } from "./scenarios.ts";

/** Markdown tables, so a run's output can be pasted into BENCHMARKS.md as it is. */

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: string[]) =>
    `| ${cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(" | ")} |`;
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)].join("\n");
}

export function fixed(value: number, digits = 0): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "n/a";
}

export function scenarioTable(result: ScenarioResult): string {
  const rows: string[][] = [
    [result.rateUnit, fixed(result.rate)],
    ["p50", `${fixed(result.p50, 1)} ms`],
    ["p99", `${fixed(result.p99, 1)} ms`],
    ...result.figures.map((figure) => [
      figure.label,
      `${fixed(figure.value, figure.unit === "ms" ? 1 : 0)}${figure.unit ? ` ${figure.unit}` : ""}`,
    ]),
    ["server RSS (highest sample)", result.rssMb > 0 ? `${fixed(result.rssMb)} MB` : "n/a"],
    ...result.checks.map((check) => [`${check.ok ? "ok" : "FAILED"}: ${check.name}`, check.detail]),
  ];
  return `### ${result.name}: ${result.description}\n\n${table(["metric", "value"], rows)}`;
}
