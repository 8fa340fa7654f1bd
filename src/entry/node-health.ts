import { totalmem } from "node:os";
import { getHeapStatistics } from "node:v8";
import type { HealthCheck } from "../ports.ts";

const MB = 1024 * 1024;

/**
 * Memory as a health check: `degraded` (never `down`, restarting is the orchestrator's call) when
 * the JS heap nears V8's limit or the resident set nears the container's (cgroup) or machine's
 * memory. A fixed RSS threshold would be wrong here: embedded PGlite's WebAssembly heap holds
 * 100-200 MB outside the JS heap (more while PGlite's code is being optimized), no sign of a leak.
 */
export function memoryCheck(threshold = 0.9): HealthCheck {
  return {
    name: "memory",
    required: false,
    check: async () => {
      const { rss, heapUsed } = process.memoryUsage();
      const heapLimit = getHeapStatistics().heap_size_limit;
      // Without a cgroup limit Node answers 0 or 2^64; the machine's memory bounds either way.
      const constrained = process.constrainedMemory?.() ?? 0;
      const memoryLimit = constrained > 0 ? Math.min(constrained, totalmem()) : totalmem();
      if (heapUsed / heapLimit > threshold) {
        return { degraded: `JS heap ${mb(heapUsed)} MB of its ${mb(heapLimit)} MB limit` };
      }
      if (rss / memoryLimit > threshold) {
        return { degraded: `resident set ${mb(rss)} MB of ${mb(memoryLimit)} MB available` };
      }
      return "ok";
    },
  };
}

function mb(bytes: number): number {
  return Math.round(bytes / MB);
}
